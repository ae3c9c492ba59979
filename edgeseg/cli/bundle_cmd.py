"""``edgeseg info BUNDLE``: what a bundle holds and how it was built."""

from __future__ import annotations

import argparse
import json


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="print what a bundle holds and how it was built",
                       description="Checks the bundle's checksums and prints its manifest: input, outputs, "
                                   "classes, backend, precision, fingerprint, parity figures and files.")
    p.add_argument("bundle")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(run=run_info)


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
        for key, where in (("engine_frame_size", "at frame size"), ("engine", "at model size")):
            if parity.get(key):
                reference = parity[key.replace("engine", "reference")]
                line += f"; mIoU {where} {parity[key]['miou']:.4f} (fp32 {reference['miou']:.4f})"
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
