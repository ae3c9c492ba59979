"""The run side must never import torch or onnx (DESIGN.md)."""

import subprocess
import sys

RUN_SIDE = ["edgeseg", "edgeseg.data", "edgeseg.data.check", "edgeseg.data.synth", "edgeseg.data.frames",
            "edgeseg.metrics", "edgeseg.cli", "edgeseg.errors", "edgeseg.progress", "edgeseg.engines",
            "edgeseg.engines.bundle", "edgeseg.engines.accuracy", "edgeseg.engines.openvino_engine",
            "edgeseg.engines.onnxruntime_engine", "edgeseg.engines.tensorrt_engine", "edgeseg.runtime.regions",
            "edgeseg.runtime.rules", "edgeseg.runtime.session", "edgeseg.runtime.sources.video",
            "edgeseg.runtime.sources.image_folder", "edgeseg.runtime.sources.usb", "edgeseg.runtime.sources.gstreamer",
            "edgeseg.runtime.sources.pylon", "edgeseg.cli.run_cmd", "edgeseg.engines.trust",
            "edgeseg.engines.kserve_engine", "edgeseg.export.staging", "edgeseg.export.rebuild",
            "edgeseg.export.serving", "edgeseg.export.model_api", "edgeseg.export.foreign_options"]


def test_run_side_imports_neither_torch_nor_onnx():
    code = (f"import sys\nfor m in {RUN_SIDE!r}: __import__(m)\n"
            "from edgeseg.cli import build_parser; build_parser()\n"
            "heavy = sorted(m for m in sys.modules\n"
            "               if m.split('.')[0] in ('torch', 'onnx', 'onnxruntime', 'onnxslim', 'openvino', 'nncf'))\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"run side imported: {out.stdout.strip()}"


def test_build_side_does_import_torch():
    # guards the test above against passing because the check itself is broken
    code = "import sys, edgeseg.models; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_running_a_bundle_needs_only_its_backend(bundle_factory, tmp_path):
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "frame.png"), np.zeros((80, 96), np.uint8))
    for backend in ("openvino", "onnxruntime"):
        path = bundle_factory(backend, "fp32").path
        code = ("import sys\nfrom pathlib import Path\n"
                "from edgeseg.runtime.session import InspectionSession, RunOptions\n"
                f"s = InspectionSession(RunOptions(Path({str(path)!r}), {str(tmp_path)!r}, status=False))\n"
                "assert s.run().frames == 1\ns.close()\n"
                "heavy = {m.split('.')[0] for m in sys.modules} & {'torch', 'onnx', 'nncf', 'onnxslim'}\n"
                "print(','.join(sorted(heavy)))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "", f"{backend} engine imported: {out.stdout.strip()}"
