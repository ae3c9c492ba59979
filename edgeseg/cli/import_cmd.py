"""``edgeseg import FOREIGN.onnx -o model.onnx --classes classes.csv``: a segmentation graph
trained elsewhere, wrapped in edgeseg's contract (edgeseg/export/foreign.py)."""

from __future__ import annotations

import argparse

from edgeseg.cli.values import positive_int


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, not '{text}'") from None


def _size(text: str) -> tuple[int, int]:
    height, _, width = text.lower().partition("x")
    if not (height.isdigit() and width.isdigit() and int(height) > 0 and int(width) > 0):
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH such as 512x1024, not '{text}'")
    return int(height), int(width)


def add_parser(sub) -> None:
    from edgeseg.export.foreign_options import HEADS, LAYOUTS, NORMALIZATIONS

    p = sub.add_parser("import", help="wrap a segmentation graph trained elsewhere for compile, verify and run",
                       description="Wraps a foreign ONNX segmentation graph (segmentation_models_pytorch, "
                                   "MMSegmentation, torchvision-style, ...) in edgeseg's contract: uint8 NHWC frames "
                                   "in, uint8 mask and float confidence out at the frame's size, with the "
                                   "normalisation, channel order, layout, upsampling and argmax inside the graph. "
                                   "Checks opset, class count and shapes, and prints the wrapped graph's agreement "
                                   "with the foreign one.")
    p.add_argument("foreign", help="the foreign ONNX graph (one float32 image input; logits out)")
    p.add_argument("-o", "--output", required=True, help="the wrapped graph to write (then: edgeseg compile)")
    p.add_argument("--classes", required=True, help="class table (id,name,r,g,b) in the order of the logits")
    p.add_argument("--layout", choices=LAYOUTS, default="nchw", help="the graph's input layout (default nchw)")
    p.add_argument("--output-layout", choices=LAYOUTS, help="the logits' layout (default: as the input)")
    p.add_argument("--channel-order", choices=("rgb", "bgr", "gray"), default="rgb",
                   help="the channel order the graph was trained on (default rgb; MMSegmentation's is bgr "
                        "unless its preprocessor converts)")
    p.add_argument("--input-order", choices=("rgb", "bgr", "gray"),
                   help="the camera frames' order (default: the graph's; the wrapper swaps where they differ)")
    p.add_argument("--normalization", choices=tuple(NORMALIZATIONS), default="imagenet",
                   help="value range and mean/std: imagenet = /255 then ImageNet mean/std (default; torchvision, "
                        "smp), mmseg = 0-255 with MMSegmentation's mean/std, unit = /255, raw = 0-255")
    p.add_argument("--mean", type=_floats, help="per-channel mean, replacing the normalization's (e.g. 0.5,0.5,0.5)")
    p.add_argument("--std", type=_floats, help="per-channel std, replacing the normalization's")
    p.add_argument("--scale", type=float, help="pixel multiplier before mean/std, replacing the normalization's")
    p.add_argument("--size", type=_size, help="HEIGHTxWIDTH the graph runs at (required for a dynamic size)")
    p.add_argument("--head", choices=HEADS, default="softmax",
                   help="softmax: K logits for K classes (default); sigmoid: one logit for two classes; "
                        "argmax: the graph already gives class ids")
    p.add_argument("--no-confidence", dest="confidence", action="store_false", help="no confidence output")
    p.add_argument("--data", help="a data set whose val images measure the parity (default: random frames)")
    p.add_argument("--parity-frames", type=positive_int, default=16, help="frames for the parity (default 16)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edgeseg.export.foreign import ImportOptions, import_foreign

    height, width = args.size or (None, None)
    result = import_foreign(ImportOptions(
        foreign=args.foreign, output=args.output, classes=args.classes, layout=args.layout,
        output_layout=args.output_layout, channel_order=args.channel_order, input_order=args.input_order,
        normalization=args.normalization, mean=args.mean, std=args.std, scale=args.scale, height=height,
        width=width, head=args.head, confidence=args.confidence, data=args.data, parity_frames=args.parity_frames))
    size = f"{result.width}x{result.height}" + (" (dynamic; declared size)" if result.dynamic else "")
    print(f"imported {args.foreign}: {result.classes} classes, input {size}, its output "
          f"{'x'.join(str(d) for d in result.logits_shape)}")
    print(f"  fp32 parity with the foreign graph: {100 * result.pixel_agreement:.3f} % of pixels on "
          f"{result.frames} {result.parity_source}")
    print(f"wrote {result.path}; next: edgeseg compile {result.path} --data DATA -o BUNDLE")
    return 0
