"""Hand-made bundles for the bundle security tests: signed with the test fleet's real key, with
whatever version, members or tar headers an attacker would put in them."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

from kiosk.fleet.bundle import FORMAT, MANIFEST, PAYLOAD, SIGNATURE
from kiosk.fleet.keys import load_signer


def signed_head(key: Path, version: str, files: dict[str, bytes]) -> tuple[bytes, bytes]:
    """The manifest bytes for ``files`` and their signature file, as build() would write them."""
    doc: dict[str, Any] = {
        "format": FORMAT,
        "name": "kiosk",
        "version": version,
        "arch": "any",
        "created": "2026-12-01T00:00:00Z",
        "files": [
            {"path": p, "size": len(d), "sha256": hashlib.sha256(d).hexdigest(), "mode": 0o644}
            for p, d in sorted(files.items())
        ],
    }
    raw = json.dumps(doc, indent=1, sort_keys=True).encode()
    sig = json.dumps({"signatures": [load_signer(key).sign(raw).to_dict()]}).encode()
    return raw, sig


def write_bundle(out: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(out, "w:gz", format=tarfile.PAX_FORMAT, compresslevel=1) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out


def regular(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode, info.mtime = 0o644, 0
    return info


def directory(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
    return info


def bundle(out: Path, key: Path, version: str, files: dict[str, bytes], extra=()) -> Path:
    """A correctly signed bundle of ``files``, with ``extra`` (TarInfo, data) members appended."""
    raw, sig = signed_head(key, version, files)
    members = [(regular(MANIFEST), raw), (regular(SIGNATURE), sig)]
    members += [(regular(PAYLOAD + p), d) for p, d in sorted(files.items())]
    return write_bundle(out, [*members, *extra])


def huge_header_first(out: Path, key: Path, kind: bytes, size: int) -> Path:
    """A signed bundle preceded by one extended tar header (pax ``x`` or GNU long name ``L``) of
    ``size`` bytes, streamed through gzip (megabytes on disk, never in memory here)."""
    raw, sig = signed_head(key, "1.0.0", {"VERSION": b"1.0.0"})
    head = tarfile.TarInfo("././@LongLink" if kind == tarfile.GNUTYPE_LONGNAME else "pax")
    head.type, head.size, head.mtime = kind, size, 0
    gnu = kind == tarfile.GNUTYPE_LONGNAME
    block = head.tobuf(format=tarfile.GNU_FORMAT if gnu else tarfile.USTAR_FORMAT)
    if kind == tarfile.XHDTYPE:
        # one record "N comment=aaaa…\n" of exactly `size` bytes
        digits = len(str(size))
        prefix = f"{size} comment=".encode()
        assert len(prefix) == digits + 9
        body_len = size - len(prefix) - 1
        first, tail = prefix, b"\n"
    else:
        first, body_len, tail = b"", size - 1, b"\0"
    with gzip.open(out, "wb", compresslevel=1) as gz:
        gz.write(block)
        gz.write(first)
        chunk = b"a" * (1 << 20)
        left = body_len
        while left:
            n = min(left, len(chunk))
            gz.write(chunk[:n])
            left -= n
        gz.write(tail)
        gz.write(b"\0" * (-size % 512))
        rest = io.BytesIO()
        with tarfile.open(fileobj=rest, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for name, data in ((MANIFEST, raw), (SIGNATURE, sig), (PAYLOAD + "VERSION", b"1.0.0")):
                info = regular(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        gz.write(rest.getvalue())
    return out
