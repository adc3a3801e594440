#!/usr/bin/env python3
"""Re-extract the bundled MediaPipe models from where they were published and verify them.

The runtime never downloads anything: the .tflite files are committed next to this script.
This script exists so that anyone can prove where they came from: it downloads (or takes) the
``mediapipe==0.10.21`` wheel and extracts each file listed in ``MANIFEST.json`` with a
``path_in_package``; a file with a ``repo`` and ``commit`` instead (the hair model, which the
wheel does not carry) is read from that commit of the GitHub repository (a local clone with
``--git-dir``, or raw.githubusercontent.com). Every file's sha256 is checked.

    python models/fetch_models.py                 # download the wheel with pip, extract, verify
    python models/fetch_models.py --wheel W.whl   # use a wheel already on disk
    python models/fetch_models.py --git-dir D     # read repo-sourced files from a clone (git show)
    python models/fetch_models.py --verify-only   # only check the committed files' hashes
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import urllib.request
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
            if "path_in_package" not in entry:
                continue
            data = zf.read(entry["path_in_package"])
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise SystemExit(f"{entry['path_in_package']} in {wheel.name} does not match the manifest")
            (HERE / entry["file"]).write_bytes(data)
            print(f"extracted {entry['file']} ({len(data)} bytes, sha256 ok)")


def from_repo(manifest: dict, git_dir: Path | None) -> None:
    """Files published in a repository at a commit: ``git show`` from a clone, or the raw URL."""
    for entry in manifest["models"]:
        if "repo" not in entry:
            continue
        if git_dir is not None:
            spec = f"{entry['commit']}:{entry['path_in_repo']}"
            data = subprocess.run(
                ["git", "--git-dir", str(git_dir), "show", spec], capture_output=True, check=True
            ).stdout
        else:
            url = (
                f"https://raw.githubusercontent.com/{entry['repo']}/{entry['commit']}/{entry['path_in_repo']}"
            )
            with urllib.request.urlopen(url, timeout=60) as resp:
                data = resp.read()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise SystemExit(
                f"{entry['repo']}@{entry['commit']}:{entry['path_in_repo']} does not match the manifest"
            )
        (HERE / entry["file"]).write_bytes(data)
        print(f"extracted {entry['file']} ({len(data)} bytes, sha256 ok)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="a mediapipe wheel already downloaded")
    parser.add_argument("--git-dir", type=Path, help="a clone of the repository of repo-sourced files")
    parser.add_argument("--verify-only", action="store_true")
    args = parser.parse_args()
    manifest = json.loads(MANIFEST.read_text())
    if not args.verify_only:
        if args.wheel:
            extract(args.wheel, manifest)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                extract(download_wheel(manifest["source"]["package"], Path(tmp)), manifest)
        from_repo(manifest, args.git_dir)
    problems = verify(manifest)
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        print(f"{len(manifest['models'])} model files verified")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
