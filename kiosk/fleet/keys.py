"""Fleet keys: ed25519 private keys as PKCS#8 PEM files, trust anchored in the TUF root.json.

The same keys serve both paths: the ``targets`` role of root.json signs the TUF targets metadata
(fleet repository) and every bundle's manifest (USB stick), so one trusted root.json on the
terminal decides what may be installed either way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner, Key, SSlibKey

from kiosk.errors import KioskError


class FleetKeyError(KioskError):
    """A key file or the trusted root is missing or unusable."""


def generate_signer() -> CryptoSigner:
    return CryptoSigner.generate_ed25519()


def write_private_key(path: str | Path, signer: CryptoSigner) -> Path:
    """Write the private key as unencrypted PKCS#8 PEM, mode 0600 (test and build machines only)."""
    key = signer._private_key  # noqa: SLF001 - CryptoSigner has no public export
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return path


def load_signer(path: str | Path) -> CryptoSigner:
    """An ed25519 signer from a PKCS#8 PEM file."""
    path = Path(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise FleetKeyError(f"key file not found: {path}") from None
    except (OSError, ValueError, TypeError) as exc:
        raise FleetKeyError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise FleetKeyError(f"{path}: not an ed25519 key")
    return CryptoSigner(key)


def trusted_targets_keys(root_json: str | Path) -> tuple[dict[str, Key], int]:
    """Keys and threshold of the ``targets`` role in the terminal's trusted root.json."""
    path = Path(root_json)
    try:
        data = json.loads(path.read_bytes())
        signed = data["signed"]
        role = signed["roles"]["targets"]
        keys = {kid: SSlibKey.from_dict(kid, dict(signed["keys"][kid])) for kid in role["keyids"]}
        threshold = int(role["threshold"])
    except FileNotFoundError:
        raise FleetKeyError(f"trusted root not found: {path} (provision the terminal first)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FleetKeyError(f"trusted root {path} is unusable: {exc!r}") from None
    if threshold < 1 or not keys:
        raise FleetKeyError(f"trusted root {path}: targets role has no keys")
    return keys, threshold
