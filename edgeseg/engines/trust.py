"""Which bundles this process loads, and signed bundles.

A manifest lists the sha256 of every file, and its own checksum: that catches a truncated copy,
a corrupt disk or a file swapped by mistake, but anyone who can write the bundle can also
recompute every checksum. A signature cannot be recomputed without the private key: ``compile
--sign KEY`` (or ``sign_bundle``) signs ``manifest.json`` with Ed25519, and a process that trusts
public keys (``run``/``serve --trust PUBKEY``) loads only bundles whose manifest one of them
signed. Since the manifest holds every file's checksum, the signature covers the whole bundle.

Keys are PEM files, as ``openssl genpkey -algorithm ed25519`` writes them (docs/deploy.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from edgeseg.engines.base import require_module
from edgeseg.errors import BundleError, ConfigError

SIGNATURE_FILE = "manifest.sig"
_INSTALL = "pip install 'edgeseg[signing]'"


@dataclass(frozen=True)
class LoadPolicy:
    """What a process asks of every bundle it opens (set once by the CLI's --trust and
    --allow-version-mismatch, or by an application through ``set_load_policy``)."""

    trusted_keys: tuple[Path, ...] = ()  # Ed25519 public keys (PEM); empty: signatures are not required
    allow_version_mismatch: bool = False


_policy = LoadPolicy()


def set_load_policy(policy: LoadPolicy) -> None:
    global _policy
    for key in policy.trusted_keys:
        _public_key(key)  # a key that cannot be read is refused now, not at the first bundle
    _policy = policy


def load_policy() -> LoadPolicy:
    return _policy


def _serialization():
    return require_module("cryptography.hazmat.primitives.serialization", "the cryptography package", _INSTALL)


def _read_key(path: Path, load, what: str):
    ed25519 = require_module("cryptography.hazmat.primitives.asymmetric.ed25519", "the cryptography package",
                             _INSTALL)
    try:
        key = load(Path(path).read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"{what} not found", path) from None
    except (ValueError, TypeError) as e:
        raise ConfigError(f"not a PEM {what} ({e})", path,
                          "make a pair with: openssl genpkey -algorithm ed25519 -out signing.pem && "
                          "openssl pkey -in signing.pem -pubout -out signing.pub") from None
    wanted = ed25519.Ed25519PublicKey if what == "public key" else ed25519.Ed25519PrivateKey
    if not isinstance(key, wanted):
        raise ConfigError(f"not an Ed25519 {what}", path, "edgeseg signs with Ed25519 keys only")
    return key


def _public_key(path: Path):
    return _read_key(path, _serialization().load_pem_public_key, "public key")


def _private_key(path: Path):
    return _read_key(path, lambda data: _serialization().load_pem_private_key(data, password=None), "private key")


def check_private_key(path: Path) -> str:
    """The id of the public key that goes with this private key; a ConfigError if it is no Ed25519 key."""
    return key_id(_private_key(path).public_key())


def key_id(public_key) -> str:
    """A short name for a public key: the start of the sha256 of its raw bytes."""
    s = _serialization()
    raw = public_key.public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign_bundle(bundle: Path, private_key_path: Path) -> str:
    """Sign the bundle's manifest; returns the key id it was signed with."""
    key = _private_key(private_key_path)
    manifest = (Path(bundle) / "manifest.json").read_bytes()
    signature = {"algorithm": "ed25519", "key_id": key_id(key.public_key()),
                 "signature": base64.b64encode(key.sign(manifest)).decode()}
    (Path(bundle) / SIGNATURE_FILE).write_text(json.dumps(signature, indent=2) + "\n")
    return signature["key_id"]


def check_signature(bundle: Path, manifest_bytes: bytes, trusted_keys: tuple[Path, ...]) -> str:
    """The id of the trusted key that signed these manifest bytes; a BundleError otherwise."""
    sig_path = Path(bundle) / SIGNATURE_FILE
    if not sig_path.is_file():
        raise BundleError("the bundle is not signed, and this process loads only signed bundles", bundle,
                          "sign it where it is built: edgeseg compile --sign KEY (or edgeseg sign BUNDLE --key KEY)")
    try:
        entry = json.loads(sig_path.read_text())
        signature = base64.b64decode(entry["signature"], validate=True)
    except (ValueError, KeyError, TypeError):
        raise BundleError(f"{SIGNATURE_FILE} is not a signature edgeseg wrote", bundle,
                          "sign the bundle again") from None
    exceptions = require_module("cryptography.exceptions", "the cryptography package", _INSTALL)
    for path in trusted_keys:
        key = _public_key(path)
        try:
            key.verify(signature, manifest_bytes)
            return key_id(key)
        except exceptions.InvalidSignature:
            continue
    raise BundleError(f"the signature does not match (signed by key {entry.get('key_id')!r}): the manifest was "
                      "changed after signing, or it was signed by a key this process does not trust", bundle,
                      "use the bundle as it was built and signed, or trust its key with --trust PUBKEY")
