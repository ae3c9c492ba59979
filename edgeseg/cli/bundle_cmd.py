"""``edgeseg info BUNDLE``: what a bundle holds and how it was built; ``edgeseg sign BUNDLE --key
KEY``: sign one built elsewhere (engines/trust.py)."""

from __future__ import annotations

import argparse
import json

from edgeseg.cli.engine_flags import add_load_policy_flags


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="print what a bundle holds and how it was built",
                       description="Checks the bundle's checksums and prints its manifest: input, outputs, "
                                   "classes, backend, precision, fingerprint, parity figures and files.")
    p.add_argument("bundle")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    add_load_policy_flags(p, versions=False)  # info opens no engine: only the signature is checked
    p.set_defaults(run=run_info)
    s = sub.add_parser("sign", help="sign a bundle's manifest with an Ed25519 key",
                       description="Checks the bundle's checksums and signs its manifest (manifest.sig), so that "
                                   "run and serve --trust PUBKEY load it and refuse it once anything in it changes. "
                                   "Make a key pair with: openssl genpkey -algorithm ed25519 -out signing.pem && "
                                   "openssl pkey -in signing.pem -pubout -out signing.pub")
    s.add_argument("bundle")
    s.add_argument("--key", required=True, help="Ed25519 private key, PEM (keep it off the devices)")
    s.set_defaults(run=run_sign)


def run_sign(args: argparse.Namespace) -> int:
    from edgeseg.engines.bundle import Bundle
    from edgeseg.engines.trust import sign_bundle

    bundle = Bundle.read(args.bundle)
    print(f"signed {bundle.path} with key {sign_bundle(bundle.path, args.key)}")
    return 0


def _signature(bundle) -> str:
    from edgeseg.engines.trust import SIGNATURE_FILE

    if bundle.signed_by:
        return f"signed by trusted key {bundle.signed_by}"
    if (bundle.path / SIGNATURE_FILE).is_file():
        return f"{SIGNATURE_FILE} present, not checked (give --trust PUBKEY to check it)"
    return "unsigned"


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def run_info(args: argparse.Namespace) -> int:
    from edgeseg.engines.bundle import Bundle

    bundle = Bundle.read(args.bundle)
    m = bundle.manifest
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
    if m.get("rebuilt_from"):
        origin = m["rebuilt_from"]
        print(f"  rebuilt from {origin['path']} (built {origin['created']}, "
              f"{', '.join(f'{k} {v}' for k, v in origin['fingerprint'].items())})")
    print(f"  signature    {_signature(bundle)}")
    for name, entry in m["files"].items():
        print(f"  file         {name}  {_size(entry['bytes'])}  sha256 {entry['sha256'][:16]}…")
    for note in m.get("notes", []):
        print(f"  note         {note}")
    return 0
