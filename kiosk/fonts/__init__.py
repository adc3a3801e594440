"""The CJK font our own renderings use (virtual printer's slip PNG, the touchscreen's fallback).

A real thermal printer prints Chinese with its own font; only what we draw needs one. An installed
system font is preferred; otherwise the subset bundled here (Noto Sans Mono CJK SC, SIL OFL 1.1, see
LICENSE.OFL and README.md) lets `kiosk demo` run on a machine with nothing but Python.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

# Debian fonts-noto-cjk first (what CI installs), then other places and fonts-wqy-zenhei
SYSTEM_FONTS: tuple[str, ...] = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
)
BUNDLED_NAME = "NotoSansMonoCJKsc-Subset.otf"


def bundled_font_path() -> Path:
    """The subset shipped inside the package (GB2312 level 1 and every character of our data)."""
    return Path(str(resources.files(__name__).joinpath(BUNDLED_NAME)))


def cjk_font_path() -> Path:
    """An installed CJK font if there is one (complete coverage), else the bundled subset."""
    for p in SYSTEM_FONTS:
        if Path(p).is_file():
            return Path(p)
    return bundled_font_path()
