"""``edgeseg models``: the architectures with parameter count and GFLOPs."""

from __future__ import annotations

import argparse

from edgeseg.cli.values import positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list the architectures with parameters and GFLOPs")
    p.add_argument("--size", type=positive_int, default=512, help="square input side for GFLOPs (default 512)")
    p.add_argument("--channels", type=int, default=1, choices=(1, 3),
                   help="input channels for the counts: 1 (grayscale, default) or 3")
    p.add_argument("--classes", type=positive_int, default=6, help="classes for the counts (default 6)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edgeseg.errors import ConfigError
    from edgeseg.models import ARCHITECTURES, build_model
    from edgeseg.models.complexity import count_gflops, count_parameters

    if all(args.size % arch.stride for arch in ARCHITECTURES.values()):
        raise ConfigError(f"--size {args.size} fits no architecture",
                          fix=f"give a multiple of {min(arch.stride for arch in ARCHITECTURES.values())}")
    print(f"{'name':<15} {'params':>10} {f'GFLOPs@{args.size}':>12}  description")
    for arch in ARCHITECTURES.values():
        model = build_model(arch.name, args.channels, args.classes)
        gflops = (f"{count_gflops(model, args.channels, args.size):>12.2f}" if args.size % arch.stride == 0
                  else f"{f'(stride {arch.stride})':>12}")  # an input this model does not take
        print(f"{arch.name:<15} {count_parameters(model) / 1e6:>9.2f}M {gflops}  {arch.summary}")
    print(f"\n(GFLOPs = 2 x multiply-accumulates of convolutions, {args.channels}-channel input, "
          f"{args.classes} classes, default options)")
    print("options for a training config's arch_kwargs:")
    for arch in ARCHITECTURES.values():
        print(f"  {arch.name:<15} {', '.join(arch.options)}")
    return 0
