"""``edgeseg data check DIR`` and ``edgeseg data synth -o DIR``."""

from __future__ import annotations

import argparse

from edgeseg.cli.values import positive_int


def add_parser(sub) -> None:
    data = sub.add_parser("data", help="check a data set, or synthesize one")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    check = data_sub.add_parser("check", help="find what would break training and report class balance",
                                description="Check a data set (images/, masks/, classes.csv, train.txt, val.txt). "
                                            "Exits 1 on errors, 0 on warnings only.")
    check.add_argument("dir", help="data set folder")
    check.set_defaults(run=run_check)

    synth = data_sub.add_parser("synth", help="write a synthetic inspection data set",
                                description="Textured surfaces (metal, ceramic, fabric) with pits, cracks, "
                                            "broken edges and uneven patches; deterministic by seed.")
    synth.add_argument("-o", "--out", required=True, help="folder to write")
    synth.add_argument("--count", type=int, default=200, help="number of images, at least 2 (default 200)")
    synth.add_argument("--size", type=positive_int, default=256, help="typical image side in px (default 256)")
    synth.add_argument("--color", action="store_true", help="colour images instead of grayscale")
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(run=run_synth)


def run_check(args: argparse.Namespace) -> int:
    from edgeseg.data.check import check_dataset

    report = check_dataset(args.dir)
    print(report.render())
    return 0 if report.ok else 1


def run_synth(args: argparse.Namespace) -> int:
    from edgeseg.data.synth import write_synthetic_dataset

    out = write_synthetic_dataset(args.out, args.count, args.size, args.color, args.seed)
    print(f"wrote {args.count} images to {out} (check it with: edgeseg data check {out})")
    return 0
