"""``edgeseg demo``: the main job on the built-in default, end to end on this machine:
synthesize a data set, train briefly, export to ONNX and verify it against PyTorch, then compile
it for OpenVINO (bf16 on CPUs with AMX or AVX-512 BF16, else fp32) and prove the bundle."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="synthesize data, train briefly, export, compile and verify (the built-in default)")
    p.add_argument("-o", "--out", default="edgeseg-demo", help="folder for everything (default edgeseg-demo)")
    p.add_argument("--count", type=int, default=240, help="synthetic images (default 240)")
    p.add_argument("--image-size", type=int, default=192, help="synthetic image side (default 192)")
    p.add_argument("--input-size", type=int, default=128, help="model input side (default 128)")
    p.add_argument("--epochs", type=int, default=15, help="training epochs (default 15)")
    p.add_argument("--arch", default="unet")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edgeseg.cli.compile_cmd import print_accuracy
    from edgeseg.cli.export_cmd import print_parity
    from edgeseg.data.check import check_dataset
    from edgeseg.data.synth import write_synthetic_dataset
    from edgeseg.export.compile import CompileOptions, compile_bundle
    from edgeseg.export.onnx_export import ExportOptions, export_onnx
    from edgeseg.training.config import TrainConfig
    from edgeseg.training.trainer import train

    started = time.perf_counter()
    out = Path(args.out)
    print(f"[1/5] synthesizing {args.count} inspection images")
    data = write_synthetic_dataset(out / "data", args.count, args.image_size, seed=args.seed)
    report = check_dataset(data, show_progress=False)
    if not report.ok:
        print(report.render())
        return 1
    print(f"[2/5] training {args.arch} at {args.input_size} px for {args.epochs} epochs")
    cfg = TrainConfig(data=str(data), out=str(out / "run"), arch=args.arch, input_size=args.input_size,
                      epochs=args.epochs, batch_size=8, seed=args.seed, warmup_epochs=0.5)
    result = train(cfg)
    print("[3/5] exporting to ONNX (uint8 frames in, uint8 mask and confidence out)")
    exported = export_onnx(ExportOptions(checkpoint=str(result.best_checkpoint), output=str(out / "model.onnx")))
    print("[4/5] verifying the ONNX graph against PyTorch on the validation images")
    print_parity(exported.parity)
    precision = "bf16" if _cpu_runs_bf16() else "fp32"
    print(f"[5/5] compiling for OpenVINO at {precision} and proving the bundle against the fp32 graph")
    bundle = compile_bundle(CompileOptions(str(exported.path), str(out / f"bundle-openvino-{precision}"),
                                           backend="openvino", precision=precision, data=str(data)))
    print_accuracy(bundle.accuracy, "parity gate")
    print(f"  passed: {bundle.rule}")
    print(f"\ndone in {(time.perf_counter() - started) / 60:.1f} min")
    print(f"  data set       {data}")
    print(f"  checkpoint     {result.best_checkpoint}")
    print(f"  training plot  {out / 'run' / 'iou.png'}")
    print(f"  ONNX model     {exported.path}")
    print(f"  bundle         {bundle.path}   (edgeseg info {bundle.path})")
    return 0


def _cpu_runs_bf16() -> bool:
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
