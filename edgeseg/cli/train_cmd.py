"""``edgeseg train DATA``: train a model; settings from --config YAML, overridden by flags."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeseg.cli.values import positive_float, positive_int

RECIPE = Path(__file__).resolve().parents[1] / "training" / "recipe.yaml"

# flag -> TrainConfig field; None defaults mean "keep the config's value"
_OVERRIDES = ("out", "arch", "input_size", "keep_aspect", "input_width", "input_height", "crop_size", "channels",
              "epochs", "batch_size", "lr", "weight_decay", "dropout", "loss", "class_weights", "oversample",
              "defect_free_fraction", "device", "bf16", "seed", "max_minutes", "threads", "calibrate")


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a segmentation model on a data set",
                       description="Train on DATA (images/, masks/, classes.csv, train.txt, val.txt). Writes "
                                   "best.pt, last.pt, history.json and iou.png to --out.")
    p.add_argument("data", help="data set folder")
    p.add_argument("-o", "--out", default=None, help="run folder (default runs/train)")
    p.add_argument("--config", help="YAML file of training settings (flags override it; default: the measured "
                                     "recipe, edgeseg/training/recipe.yaml)")
    p.add_argument("--arch", help="mobile-lraspp (the recipe's, default), unet or unet-lite; see edgeseg models "
                                    "(a --config without arch: unet)")
    p.add_argument("--input-size", type=positive_int,
                   help="input side: 256 (default) or 512; the shorter side where the model keeps the photos' aspect")
    p.add_argument("--keep-aspect", action=argparse.BooleanOptionalAction, default=None,
                   help="where every train photo has one aspect, train at it (default); --no-keep-aspect: square")
    p.add_argument("--input-width", type=positive_int, help="with --input-height: exactly this input size")
    p.add_argument("--input-height", type=positive_int)
    p.add_argument("--crop-size", type=positive_int, help="train on crops of this side at the model's scale "
                                                 "(faster, denser in small defects; default: whole images)")
    p.add_argument("--channels", type=int, choices=(1, 3), help="default: as the images are")
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--lr", type=positive_float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--dropout", type=float)
    p.add_argument("--loss", choices=("ce", "dice", "ce+dice"))
    p.add_argument("--class-weights", choices=("none", "sqrt", "inverse"))
    p.add_argument("--oversample", type=float, help="repeat-factor threshold for rare classes (0: off)")
    p.add_argument("--defect-free-fraction", type=float, help="share of defect-free images per epoch")
    p.add_argument("--device", help="auto (a CUDA GPU where PyTorch sees one, else the CPU), cpu, cuda or cuda:N")
    p.add_argument("--bf16", choices=("auto", "on", "off"),
                   help="bfloat16 autocast (auto: where native, on AMX or AVX-512 BF16 CPUs and Ampere or later GPUs)")
    p.add_argument("--seed", type=int)
    p.add_argument("--max-minutes", type=positive_float,
                   help="wall-time limit: no epoch starts that is expected to end past it with the "
                        "calibration after it")
    p.add_argument("--threads", type=positive_int)
    p.add_argument("--calibrate", action=argparse.BooleanOptionalAction, default=None,
                   help="after training, fit per-class score offsets on the train split and fold them into "
                        "the classifier (default: on)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--distributed", type=positive_int, metavar="N",
                   help="train on N processes of this machine with DistributedDataParallel (starts torchrun; "
                        "for several machines run torchrun yourself: docs/training-distributed.md)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edgeseg.training.config import TrainConfig
    from edgeseg.training.trainer import train

    if args.distributed:
        return _torchrun(args.argv, args.distributed)
    cfg = TrainConfig.from_yaml(args.config or RECIPE)
    cfg.data = args.data
    if args.config is None:
        _adapt_recipe(cfg, args)
    for name in _OVERRIDES:
        value = getattr(args, name)
        if value is not None:
            setattr(cfg, name, value)
    result = train(cfg, resume=args.resume)
    if not result.history:  # a rank other than 0 of a distributed run: rank 0 reports
        return 0
    m = result.best_metrics
    print(f"best mIoU {m['miou']:.3f} (defects {m['defect_miou']:.3f}) in {result.wall_seconds / 60:.1f} min")
    if result.frame_size_metrics is not None:
        f = result.frame_size_metrics
        print(f"at each image's own size: mIoU {f['miou']:.3f} (defects {f['defect_miou']:.3f})")
    print(f"checkpoint: {result.best_checkpoint}")
    print(f"next: edgeseg export {result.best_checkpoint} -o model.onnx")
    return 0


def _adapt_recipe(cfg, args: argparse.Namespace) -> None:
    """The built-in recipe's options belong to its architecture and its clock to its epoch cap:
    another --arch starts from that architecture's plain options, and --epochs without
    --max-minutes trains that many epochs, not bounded by the recipe's clock."""
    if args.arch is not None and args.arch != cfg.arch:
        cfg.arch_kwargs = {}
    if args.epochs is not None and args.max_minutes is None:
        cfg.max_minutes = None


def _torchrun(argv: list[str], processes: int) -> int:
    """This same command under torchrun on ``processes`` processes of this machine (gloo on the
    CPU), without --distributed; its exit status."""
    import subprocess
    import sys

    argv = list(argv)
    at = next(i for i, arg in enumerate(argv) if arg.startswith("--distributed"))
    del argv[at:at + (1 if "=" in argv[at] else 2)]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               "-m", "edgeseg", *argv]
    return subprocess.run(command, check=False).returncode
