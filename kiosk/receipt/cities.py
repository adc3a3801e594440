"""A city as citizens type and say it: `深圳`, `深圳市`, `shenzhen`, ` SHENZHEN `, `Shēnzhèn` are one.

The one resolver behind `receipt issue --city`, `demo --city`, the session's choice (and so the UI)
and the layouts: text is folded (width, case, tone marks, spaces) and matched against each city's id,
Chinese and English names, with or without 市 / city / shi and a leading province name. Pure
standard library: the session imports it without pulling in the receipt machinery.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping

SUFFIXES = ("市", "city", "shi")  # compared after folding
PROVINCE_SUFFIXES = ("省", "province", "sheng")
_DROP = set(" \t\r\n\u3000-_·.'’")


def fold(text: str) -> str:
    """Full-width to ASCII, accents and tone marks off, case-folded, spaces and separators removed."""
    s = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", str(text)))
    s = "".join(ch for ch in s if not unicodedata.combining(ch))
    return "".join(ch for ch in s.casefold() if ch not in _DROP)


def _bare(key: str, suffixes: tuple[str, ...] = SUFFIXES) -> str:
    for suffix in suffixes:
        if key.endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)]
    return key


def keys(city_id: str, names: Mapping[str, str]) -> set[str]:
    """Every folded form that names this city: its id and each name, with and without the suffix."""
    forms = {fold(city_id)} | {fold(names.get(lang) or "") for lang in ("zh", "en")}
    return {k for f in forms for k in (f, _bare(f)) if k}


def index(cities: Mapping[str, Mapping[str, str]]) -> tuple[dict[str, str], dict[str, set[str]]]:
    """Folded form -> city id, and the forms that name more than one city (they resolve to none)."""
    out: dict[str, str] = {}
    clashes: dict[str, set[str]] = {}
    for cid, names in cities.items():
        for k in keys(cid, names):
            if k in out and out[k] != cid:
                clashes.setdefault(k, {out[k]}).add(cid)
            out.setdefault(k, cid)
    for k in clashes:
        out.pop(k, None)
    return out, clashes


def resolve(text: str, cities: Mapping[str, Mapping[str, str]], province: Iterable[str] = ()) -> str | None:
    """The id of the city `text` names among `cities` ({id: {"zh": ..., "en": ...}}), else None.

    `province`: the province's names (广东省, Guangdong): a leading one is dropped (广东省惠州市).
    """
    table, _ = index(cities)
    k = fold(text)
    if not k:
        return None
    tries = [k]
    prefixes = {f for p in province for f in (fold(p), _bare(fold(p), PROVINCE_SUFFIXES)) if f}
    tries += [k[len(p) :] for p in sorted(prefixes, key=len, reverse=True) if k.startswith(p) and k != p]
    tries += [_bare(t) for t in tries]
    return next((table[t] for t in tries if t in table), None)
