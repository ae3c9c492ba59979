"""``edgeseg export CKPT -o model.onnx``."""

from __future__ import annotations

import argparse

from edgeseg.cli.values import positive_int
from edgeseg.engines.accuracy import MIN_AGREEMENT


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a checkpoint to ONNX with pre/post-processing folded in",
                       description="The graph takes uint8 NHWC frames and returns a uint8 class mask and a "
                                   "confidence map. Parity with PyTorch is measured on real images and the "
                                   f"export fails below {100 * MIN_AGREEMENT['fp32']:g} % pixel agreement.")
    p.add_argument("checkpoint", help="best.pt from edgeseg train")
    p.add_argument("-o", "--output", required=True, help="ONNX file to write")
    p.add_argument("--data", help="labelled data set for parity (default: the one it was trained on)")
    p.add_argument("--split", default="val", help="split used for parity (default val)")
    p.add_argument("--input-order", choices=("bgr", "rgb", "gray"),
                   help="channel order of the camera's frames (default: the model's)")
    p.add_argument("--height", type=positive_int, help="input height (default: the training size)")
    p.add_argument("--width", type=positive_int, help="input width (default: the training size)")
    p.add_argument("--batch", type=positive_int, default=1, help="static batch size (default 1)")
    p.add_argument("--dynamic", action="store_true", help="dynamic batch, height and width")
    p.add_argument("--no-confidence", action="store_true", help="mask output only")
    p.add_argument("--no-simplify", action="store_true", help="skip onnxslim")
    p.add_argument("--parity-images", type=positive_int, default=200,
                   help="images used for parity, spread over the split (default 200)")
    p.set_defaults(run=run)


def print_parity(parity) -> None:
    print(f"parity on {parity.images} images of {parity.source}:")
    print(f"  pixel agreement with PyTorch   {100 * parity.pixel_agreement:.3f} %")
    print(f"  mIoU vs ground truth           PyTorch {parity.reference['miou']:.4f}   "
          f"ONNX {parity.exported['miou']:.4f}")
    print(f"  defect mIoU vs ground truth    PyTorch {parity.reference['defect_miou']:.4f}   "
          f"ONNX {parity.exported['defect_miou']:.4f}")


def run(args: argparse.Namespace) -> int:
    from edgeseg.export.onnx_export import ExportOptions, export_onnx

    result = export_onnx(ExportOptions(
        checkpoint=args.checkpoint, output=args.output, data=args.data, split=args.split,
        input_order=args.input_order, height=args.height, width=args.width, batch=args.batch,
        dynamic=args.dynamic, confidence=not args.no_confidence, simplify=not args.no_simplify,
        parity_images=args.parity_images))
    print_parity(result.parity)
    print(f"wrote {result.path}")
    return 0
