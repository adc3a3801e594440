"""Make the bundled CJK font: a subset of Noto Sans Mono CJK SC (SIL OFL 1.1) for machines without one.

Run from a checkout where Debian's fonts-noto-cjk is installed (a dev-only tool; needs fontTools from
the `test` extra): `python -m kiosk.fonts.make_subset`. It keeps ASCII/Latin-1, common punctuation,
GB2312's symbol rows and level-1 hanzi, and every character of the package's data and UI files, so a
slip, a prompt or a screen never draws tofu. The Mono face: the virtual printer's font A is
half-width ASCII beside full-width hanzi, which is what this face draws.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent  # kiosk/
SOURCE = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
SOURCE_FACE = "Noto Sans Mono CJK SC"
OUTPUT = Path(__file__).with_name("NotoSansMonoCJKsc-Subset.otf")
TEXT_SUFFIXES = {".toml", ".json", ".html", ".js", ".css", ".py"}  # .py: bilingual strings still in code
RANGES = (
    (0x20, 0x7E),  # ASCII
    (0xA0, 0xFF),  # Latin-1 (×, ÷, °, ·)
    (0x2010, 0x2027),  # dashes, quotes, ellipsis
    (0x2030, 0x203B),  # ‰, ′, ※
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0xFF01, 0xFF5E),  # full-width forms
    (0xFFE0, 0xFFE6),  # full-width ¥, ￡ ...
)


def gb2312_chars() -> set[str]:
    """GB2312's symbol rows (0xA1..0xA9) and level-1 hanzi (0xB0A1..0xD7F9, 3755 characters)."""
    out: set[str] = set()
    for hi in list(range(0xA1, 0xAA)) + list(range(0xB0, 0xD8)):
        for lo in range(0xA1, 0xFF):
            if hi == 0xD7 and lo > 0xF9:
                break
            try:
                out.add(bytes((hi, lo)).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return out


def data_chars(root: Path = PACKAGE) -> set[str]:
    """Every non-ASCII character of the package's text files (profiles, layouts, prompts, UI)."""
    out: set[str] = set()
    for path in root.rglob("*"):
        if path.suffix in TEXT_SUFFIXES and path.is_file() and "__pycache__" not in path.parts:
            out.update(ch for ch in path.read_text(encoding="utf-8", errors="ignore") if ord(ch) > 0x7E)
    return {ch for ch in out if ch.isprintable()}


def wanted_chars() -> set[str]:
    chars = {chr(c) for lo, hi in RANGES for c in range(lo, hi + 1)}
    return chars | gb2312_chars() | data_chars()


def face_index(ttc: Path, family: str) -> int:
    from fontTools.ttLib import TTCollection

    for i, font in enumerate(TTCollection(str(ttc), lazy=True).fonts):
        if font["name"].getDebugName(1) == family:
            return i
    raise SystemExit(f"make_subset: {ttc} has no face {family!r}")


def make(source: Path = SOURCE, output: Path = OUTPUT) -> tuple[int, int]:
    """Write the subset; (characters kept, bytes written)."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    font = TTFont(str(source), fontNumber=face_index(source, SOURCE_FACE))
    cmap = font.getBestCmap()
    chars = sorted(c for c in wanted_chars() if ord(c) in cmap)
    options = subset.Options()
    options.hinting = False  # small sizes on a screen and a 203-dpi printer: no hints needed
    options.layout_features = []  # no vertical forms, ligatures or kerning in our renderings
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "BASE", "VORG", "vhea", "vmtx"]
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6, 7, 11, 13, 14]  # keep copyright and licence records
    options.notdef_outline = True
    sub = subset.Subsetter(options)
    sub.populate(unicodes=[ord(c) for c in chars])
    sub.subset(font)
    font.save(str(output))
    return len(chars), output.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE, help="Noto Sans CJK collection (.ttc)")
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    if not args.source.is_file():
        print(f"make_subset: {args.source}: no such file (apt-get install fonts-noto-cjk)", file=sys.stderr)
        return 2
    n, size = make(args.source, args.output)
    print(f"{args.output}: {n} characters, {size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
