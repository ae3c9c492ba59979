"""``edgeseg info BUNDLE`` and ``edgeseg verify BUNDLE --data DIR``."""

from __future__ import annotations

import argparse
import json

from edgeseg.cli.values import positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="print what a bundle holds and how it was built",
                       description="Checks the bundle's checksums and prints its manifest: input, outputs, "
                                   "classes, backend, precision, fingerprint, parity figures and files.")
    p.add_argument("bundle")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(run=run_info)

    p = sub.add_parser("verify", help="measure a bundle on a labelled data set, here on this machine",
                       description="Loads the bundle as the runtime does (checksums and fingerprint checked), "
                                   "runs it on the data set and prints per-class IoU and mIoU against ground truth "
                                   "and pixel agreement with the fp32 reference graph in the bundle. Exit 1 "
                                   "below the bundle's parity gate.")
    p.add_argument("bundle")
    p.add_argument("--data", required=True, help="labelled data set folder")
    p.add_argument("--split", default="val", help="split to use (default val)")
    p.add_argument("--limit", type=positive_int, default=500, help="frames at most (default 500)")
    p.set_defaults(run=run_verify)


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def run_info(args: argparse.Namespace) -> int:
    from edgeseg.engines.bundle import Bundle

    m = Bundle.read(args.bundle).manifest
    if args.json:
        print(json.dumps(m, indent=2))
        return 0
    spec = m["input"]
    print(f"bundle {args.bundle}  (schema {m['schema_version']}, built {m['created']})")
    print(f"  backend      {m['backend']}  precision {m['precision']}  {json.dumps(m['engine']['options'])}")
    print(f"  input        {spec['name']} {'x'.join(str(d) for d in spec['shape'])} uint8 NHWC, "
          f"{spec['color_order']}, {spec['resize']}")
    print(f"  outputs      {', '.join(o['name'] + ' ' + o['dtype'] for o in m['outputs'])}")
    print("  classes      " + ", ".join(f"{c['id']} {c['name']}" for c in m["classes"]))
    print(f"  fingerprint  {', '.join(f'{k} {v}' for k, v in m['fingerprint'].items())}")
    parity = m.get("parity") or {}
    if parity:
        line = f"{100 * parity['pixel_agreement']:.3f} % agreement with fp32 on {parity['images']} frames"
        if parity.get("engine"):
            line += f"; mIoU {parity['engine']['miou']:.4f} (fp32 {parity['reference']['miou']:.4f})"
        print(f"  parity       {line}")
        print(f"  gate         {'passed' if parity['passed'] else 'FAILED, kept with --force'}: {parity['rule']}")
    if m.get("calibration"):
        print(f"  calibration  {m['calibration']['frames']} frames of {m['calibration']['source']}")
    print(f"  built with   {', '.join(f'{k} {v}' for k, v in m['built_with'].items())}")
    for name, entry in m["files"].items():
        print(f"  file         {name}  {_size(entry['bytes'])}  sha256 {entry['sha256'][:16]}…")
    for note in m.get("notes", []):
        print(f"  note         {note}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from edgeseg.cli.compile_cmd import print_accuracy
    from edgeseg.data.frames import load_frames
    from edgeseg.engines import open_engine
    from edgeseg.engines.accuracy import ReferenceEngine, gate, measure, run_frames
    from edgeseg.engines.bundle import Bundle
    from edgeseg.errors import DatasetError

    bundle = Bundle.read(args.bundle)
    spec, manifest = bundle.manifest["input"], bundle.manifest
    frames = load_frames(args.data, spec["channels"], spec["height"], spec["width"], args.limit, split=args.split,
                         require_split=True)
    if frames.truth is None:
        raise DatasetError("verify needs ground truth masks", args.data, "give a data set folder with masks/")
    with open_engine(bundle) as engine:
        engine_masks = run_frames(engine, frames.frames, True, "engine")
    with ReferenceEngine(bundle.file(manifest["source"]["reference"]), frames.frames.shape[1:]) as reference:
        reference_masks = run_frames(reference, frames.frames, True, "fp32 reference")
    report = measure(engine_masks, reference_masks, frames, [c["name"] for c in manifest["classes"]])
    assert report.engine is not None and report.reference is not None  # frames with ground truth
    print(f"{manifest['backend']} {manifest['precision']} bundle {bundle.path}")
    print(f"  {'class':<16}{'engine IoU':>12}{'fp32 IoU':>12}")
    for name, value in report.engine["per_class_iou"].items():
        ref = report.reference["per_class_iou"][name]
        show = lambda v: "—" if v is None else f"{v:.4f}"  # noqa: E731
        print(f"  {name:<16}{show(value):>12}{show(ref):>12}")
    print_accuracy(report, "verify")
    passed, rule = gate(report, manifest["precision"])
    print(f"  {'passed' if passed else 'FAILED'}: {rule} (reference run with {reference.runtime})")
    return 0 if passed else 1
