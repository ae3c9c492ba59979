"""The run side must never import torch or onnx (DESIGN.md)."""

import subprocess
import sys

RUN_SIDE = ["edgeseg", "edgeseg.data", "edgeseg.data.check", "edgeseg.data.synth", "edgeseg.metrics",
            "edgeseg.cli", "edgeseg.errors", "edgeseg.progress"]


def test_run_side_imports_neither_torch_nor_onnx():
    code = (f"import sys\nfor m in {RUN_SIDE!r}: __import__(m)\n"
            "from edgeseg.cli import build_parser; build_parser()\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'onnx', 'onnxruntime', 'onnxslim'))\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"run side imported: {out.stdout.strip()}"


def test_build_side_does_import_torch():
    # guards the test above against passing because the check itself is broken
    code = "import sys, edgeseg.models; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
