#!/usr/bin/env bash
# Re-resolve the lock of every target in locks/targets.toml (or of the targets named), pinned with
# hashes, with uv (`pip install uv`, the `release` extra): unlike pip-compile, uv resolves for a
# platform other than this machine's (--python-platform), so the Pi's lock is made on x86.
# Then pip downloads each lock exactly as `kiosk update build` does, so a lock pip cannot
# satisfy (e.g. a Requires-Python uv ignores) fails here and not at release time.
#   locks/refresh.sh [TARGET...]        e.g. locks/refresh.sh aarch64
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
uv=${UV:-$(command -v uv || echo .venv/bin/uv)}
[ -x "$uv" ] || { echo "refresh.sh: uv not found (pip install uv, or set UV=...)" >&2; exit 2; }
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT

"$py" - "$@" <<'PY' |
import sys, tomllib
targets = tomllib.load(open("locks/targets.toml", "rb"))
for name in sys.argv[1:] or targets:
    t = targets[name]
    cons = ",".join("locks/" + c for c in t["constraints"])
    top = int(t["glibc"].split(".")[1])
    pip = [f"manylinux_2_{m}_{name}" for m in range(top, 16, -1)] + [f"manylinux2014_{name}"]
    uv_platform = f"{name}-manylinux_2_{top}"
    print(name, uv_platform, t["python"], "locks/" + t["lock"], cons, ",".join(pip), t["abi"])
PY
while read -r name uv_platform python lock constraints pip_platforms abi; do
    echo "== $name: $lock" >&2
    cons=()
    for c in ${constraints//,/ }; do cons+=(-c "$c"); done
    "$uv" pip compile pyproject.toml "${cons[@]}" --python-platform "$uv_platform" \
        --python-version "$python" --only-binary :all: --generate-hashes --no-header --quiet \
        -o "$lock.new"
    { echo "# The $name target's locked dependencies (CPython $python, $uv_platform), with hashes."
      echo "# Made by locks/refresh.sh with $("$uv" --version); do not edit by hand."
      cat "$lock.new"; } > "$lock" && rm -f "$lock.new"
    plats=()
    for p in ${pip_platforms//,/ }; do plats+=(--platform "$p"); done
    "$py" -m pip download -q --only-binary=:all: "${plats[@]}" --python-version "$python" \
        --implementation cp --abi "$abi" --require-hashes --no-deps -r "$lock" -d "$cache/$name"
    echo "   $(grep -c '^[a-z]' "$lock") packages, $(ls "$cache/$name" | wc -l) wheels downloaded" >&2
done
