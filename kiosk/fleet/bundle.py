"""Release bundles: a gzip tar of ``manifest.json``, ``manifest.sig`` and ``payload/...``.

The manifest lists every payload file with size, sha256 and mode; its exact bytes are signed
(ed25519) by the fleet ``targets`` key(s). Unpacking streams each member into a staging directory
while hashing it, so a tampered, truncated or padded bundle never becomes a release directory.

Memory stays bounded whatever the bundle holds: the manifest and its signature must be the first
two members and small (MAX_MANIFEST, MAX_SIGNATURE), the signature is checked before the manifest
is parsed, tar's extended headers (pax, GNU long names), which tarfile reads whole into memory, are
refused above MAX_EXTENDED_HEADER, and members are not accumulated while streaming. Any member the
signed manifest does not list is refused, directories included. Versions are plain dotted numbers
(no whitespace, no newline: a version names a release directory).
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import platform
import re
import shutil
import tarfile
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from securesystemslib.exceptions import UnverifiedSignatureError
from securesystemslib.signer import Key, Signature, Signer

from kiosk.durable import fsync_dir
from kiosk.errors import InputError, KioskError

FORMAT = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PAYLOAD = "payload/"
_VERSION_RE = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,6}){0,3}")  # fullmatch: "1.5.0\n" is not one
_CHUNK = 1 << 16
MAX_MANIFEST = 8 << 20  # bytes; a release of ~50,000 files
MAX_SIGNATURE = 64 << 10
MAX_EXTENDED_HEADER = 64 << 10  # a pax header or GNU long name: paths, never megabytes
MAX_HEADER_CHAIN = 4  # extended headers in a row before one member


class BundleError(InputError):
    """The bundle is not acceptable (forged, tampered, truncated, malformed)."""


class DiskFull(KioskError):
    """The release could not be unpacked for lack of space; nothing was installed."""


def parse_version(text: str) -> tuple[int, ...]:
    """'1.10.2' -> (1, 10, 2); anything else is refused (no pre-release games with ordering)."""
    if not isinstance(text, str) or not _VERSION_RE.fullmatch(text):
        raise BundleError(f"bad version {text!r}: expected digits separated by dots, e.g. 1.4.2")
    parts = tuple(int(p) for p in text.split("."))
    return parts + (0,) * (4 - len(parts))


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str
    mode: int


@dataclass(frozen=True)
class Manifest:
    version: str
    arch: str
    created: str
    files: tuple[FileEntry, ...]
    raw: bytes
    abi: str | None = None  # CPython ABI of the compiled files in site/ (e.g. cp311); None: none


    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)


def _safe_relpath(path: object) -> str:
    if not isinstance(path, str) or not path or "\\" in path or "\0" in path:
        raise BundleError(f"bad file path in manifest: {path!r}")
    p = PurePosixPath(path)
    if p.is_absolute() or any(part in ("", ".", "..") for part in path.split("/")):
        raise BundleError(f"unsafe file path in manifest: {path!r}")
    return path


def parse_manifest(raw: bytes) -> Manifest:
    try:
        data = json.loads(raw)
        if data.get("format") != FORMAT:
            raise BundleError(f"unsupported bundle format {data.get('format')!r} (expected {FORMAT})")
        version = data["version"]
        parse_version(version)
        files = []
        seen = set()
        for f in data["files"]:
            path = _safe_relpath(f["path"])
            if path in seen:
                raise BundleError(f"duplicate file in manifest: {path}")
            seen.add(path)
            size, digest, mode = f["size"], f["sha256"], f["mode"]
            if not (isinstance(size, int) and size >= 0 and isinstance(mode, int) and 0 <= mode <= 0o777):
                raise BundleError(f"bad size or mode for {path} in manifest")
            if not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest)):
                raise BundleError(f"bad sha256 for {path} in manifest")
            files.append(FileEntry(path, size, digest, mode))
        abi = data.get("abi")
        if abi is not None and not (isinstance(abi, str) and re.fullmatch(r"[a-z]+\d+", abi)):
            raise BundleError(f"bad Python ABI {abi!r} in manifest")
        return Manifest(version, str(data["arch"]), str(data.get("created", "")), tuple(files), raw, abi)
    except BundleError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BundleError(f"malformed manifest: {exc!r}") from None


def verify_signature(raw: bytes, sig_blob: bytes, keys: dict[str, Key], threshold: int) -> None:
    """At least ``threshold`` distinct trusted keys must have signed the manifest bytes."""
    try:
        sigs = json.loads(sig_blob)["signatures"]
        parsed = [Signature.from_dict(dict(s)) for s in sigs]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BundleError(f"malformed signature file: {exc!r}") from None
    good = set()
    for sig in parsed:
        key = keys.get(sig.keyid)
        if key is None:
            continue
        try:
            key.verify_signature(sig, raw)
        except UnverifiedSignatureError:
            raise BundleError(
                f"bad signature by key {sig.keyid[:12]}: the manifest was altered or forged"
            ) from None
        good.add(sig.keyid)
    if len(good) < threshold:
        if not good and parsed:
            raise BundleError("signed with a key this terminal does not trust")
        raise BundleError(f"not enough trusted signatures ({len(good)} of {threshold})")


class _BoundedTarInfo(tarfile.TarInfo):
    """tarfile reads an extended header (pax, GNU long name) whole into memory, and one may precede
    even the first member: a 1 GiB one peaked at 1.1 GB before any signature was looked at. Refused
    above MAX_EXTENDED_HEADER, and sparse members (never built) at once. ``_proc_member`` is
    tarfile's documented hook for subclasses."""

    def _proc_member(self, tar: tarfile.TarFile) -> tarfile.TarInfo:  # type: ignore[override]
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise BundleError(f"sparse member {self.name!r}: only regular files are allowed in a bundle")
        extended = self.type in (
            tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
            tarfile.SOLARIS_XHDTYPE,
        )  # fmt: skip
        chain = getattr(tar, "_kiosk_chain", 0) + 1 if extended else 0
        tar._kiosk_chain = chain  # type: ignore[attr-defined]
        if extended and (self.size > MAX_EXTENDED_HEADER or chain > MAX_HEADER_CHAIN):
            raise BundleError(
                f"extended tar header of {self.size} bytes (chain of {chain}): not a bundle this builds"
            )
        return super()._proc_member(tar)


def _open(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r:gz", tarinfo=_BoundedTarInfo)
    except FileNotFoundError:
        raise BundleError(f"bundle not found: {path}") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise BundleError(f"{path}: not a bundle (unreadable gzip tar: {exc})") from None


_TAR_ERRORS = (tarfile.TarError, EOFError, zlib.error)


def _head(tar: tarfile.TarFile, path: Path) -> tuple[bytes, bytes]:
    """The manifest and its signature: they must be the first two members, small, and are read
    before any payload."""
    blobs = []
    for expected, most in ((MANIFEST, MAX_MANIFEST), (SIGNATURE, MAX_SIGNATURE)):
        member = tar.next()
        if member is None or member.name != expected or not member.isreg():
            raise BundleError(f"{path}: bundle must start with {MANIFEST} and {SIGNATURE}")
        if member.size > most:
            raise BundleError(f"{path}: {expected} of {member.size} bytes is too large (at most {most})")
        fh = tar.extractfile(member)
        assert fh is not None
        blobs.append(fh.read())
    return blobs[0], blobs[1]


def read_verified_manifest(path: str | Path, keys: dict[str, Key], threshold: int) -> Manifest:
    """Check the signature and the manifest only (cheap): version decisions come before unpacking."""
    path = Path(path)
    try:
        with _open(path) as tar:
            raw, sig = _head(tar, path)
    except _TAR_ERRORS as exc:
        raise BundleError(f"{path}: truncated or corrupt bundle ({exc})") from None
    verify_signature(raw, sig, keys, threshold)
    return parse_manifest(raw)


def unpack(path: str | Path, dest: Path, keys: dict[str, Key], threshold: int, progress=None) -> Manifest:
    """Verify and unpack the bundle's payload into ``dest`` (which must not exist), durably.

    Every file is hashed while written, fsynced, and compared with the signed manifest; missing,
    extra, non-regular or altered members abort. On any failure ``dest`` is removed.
    """
    path = Path(path)
    if dest.exists():
        raise KioskError(f"{dest} already exists")
    dest.mkdir(parents=True)
    try:
        with _open(path) as tar:
            raw, sig = _head(tar, path)
            verify_signature(raw, sig, keys, threshold)
            manifest = parse_manifest(raw)
            entries = {f.path: f for f in manifest.files}
            done: set[str] = set()
            while (member := tar.next()) is not None:  # streaming: members after the head
                tar.members.clear()  # tarfile keeps every member it has read: 300,000 would stay
                if not member.name.startswith(PAYLOAD):
                    raise BundleError(f"unexpected member {member.name!r} outside payload/")
                rel = member.name[len(PAYLOAD) :]
                if member.isdir():  # build() writes none; the manifest lists files only
                    raise BundleError(f"directory {rel!r} is not in the signed manifest")
                entry = entries.get(rel)
                if entry is None or rel in done:
                    raise BundleError(f"file {rel!r} is not in the signed manifest (or appears twice)")
                if not member.isreg():
                    raise BundleError(f"{rel}: only regular files are allowed in a bundle")
                if member.size != entry.size:
                    raise BundleError(f"{rel}: size {member.size} differs from the manifest ({entry.size})")
                _write_member(tar, member, dest / rel, entry)
                done.add(rel)
                if progress:
                    progress(rel)
            missing = set(entries) - done
            if missing:
                raise BundleError(f"bundle is missing {len(missing)} file(s), e.g. {sorted(missing)[0]}")
        for d in sorted({p for p in dest.rglob("*") if p.is_dir()} | {dest}, key=lambda p: -len(p.parts)):
            fsync_dir(d)
        return manifest
    except _TAR_ERRORS as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise BundleError(f"{path}: truncated or corrupt bundle ({exc})") from None
    except OSError as exc:
        shutil.rmtree(dest, ignore_errors=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(f"disk full while unpacking into {dest.parent}; nothing installed") from None
        raise KioskError(f"cannot unpack into {dest}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, entry: FileEntry) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    src = tar.extractfile(member)
    assert src is not None
    h = hashlib.sha256()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := src.read(_CHUNK):
            h.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if h.hexdigest() != entry.sha256:
        raise BundleError(f"{entry.path}: sha256 differs from the signed manifest (tampered file)")
    os.chmod(target, entry.mode)


def default_arch() -> str:
    return platform.machine() or "any"


def build(
    files: Iterable[tuple[str, Path | bytes]],
    version: str,
    signers: list[Signer],
    out: str | Path,
    arch: str = "any",
    abi: str | None = None,
) -> Manifest:
    """Write a signed bundle from (path in release, source file or contents) pairs.

    ``arch`` and ``abi`` are the target the terminal checks before installing (``platform.machine()``
    and its Python's ABI tag); ``abi`` None: nothing in the bundle depends on the Python ABI."""
    parse_version(version)
    if not signers:
        raise KioskError("build: at least one signing key is needed")
    entries = []
    sources = []
    for rel, src in sorted(files, key=lambda f: f[0]):
        _safe_relpath(rel)
        if isinstance(src, bytes):
            data, mode = src, 0o755 if src.startswith(b"#!") else 0o644
        else:
            data = src.read_bytes()
            mode = 0o755 if os.access(src, os.X_OK) else 0o644
        entries.append(
            {"path": rel, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "mode": mode}
        )
        sources.append((rel, data, mode))
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    doc = {
        "format": FORMAT,
        "name": "kiosk",
        "version": version,
        "arch": arch,
        **({"abi": abi} if abi else {}),
        "created": created,
        "files": entries,
    }
    raw = json.dumps(doc, indent=1, sort_keys=True).encode()
    sig = json.dumps({"signatures": [s.sign(raw).to_dict() for s in signers]}, indent=1).encode()
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode in [(MANIFEST, raw, 0o644), (SIGNATURE, sig, 0o644)] + [
            (PAYLOAD + rel, data, mode) for rel, data, mode in sources
        ]:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, out)
    return parse_manifest(raw)


def tree_files(
    tree: Path, prefix: str, exclude=("__pycache__", ".pyc", ".git", ".venv")
) -> list[tuple[str, Path]]:
    """Regular files below ``tree`` as (prefix/relative path, source) pairs, caches left out."""
    out = []
    for p in sorted(tree.rglob("*")):
        rel = p.relative_to(tree).as_posix()
        if any(x in rel for x in exclude) or not p.is_file() or p.is_symlink():
            continue
        out.append((f"{prefix}/{rel}" if prefix else rel, p))
    return out
