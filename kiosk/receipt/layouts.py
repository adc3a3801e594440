"""A province's cities and slip layouts per document type and city, loaded from layouts.toml and validated.

Adding a city, a province or changing what a slip says is a data change; every error names the
offending key. The file in use is chosen by the configuration (receipt.layouts_file, receipt.home_city)
through `use_layouts`, once per process, by kiosk.receipt.wiring.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from kiosk.errors import InputError, KioskError
from kiosk.receipt.cities import index, resolve

LAYOUTS_FILE = Path(__file__).with_name("layouts.toml")
SCHEMA_VERSION = 1
BLOCKS = ("title", "number", "barcode", "qr", "fields", "use_at", "thumbnail", "note")
SLIP_KEYS = {
    "title": str,
    "number_label": str,
    "validity_days": int,
    "use_at": str,
    "note": str,
    "qr": str,
    "thumbnail": bool,
    "blocks": list,
}
NOT_PRINTED = ("source",)  # a slip table may name its source (an id in [sources]); never printed


class LayoutError(KioskError):
    exit_code = 2


@dataclass(frozen=True)
class City:
    id: str
    name_zh: str
    name_en: str
    region: str  # GB/T 2260 administrative division code, part of every number issued for the city
    group: str = ""  # id in [groups] (the picker's sections), empty when the file has no groups

    def names(self) -> dict[str, str]:
        return {"zh": self.name_zh, "en": self.name_en}


@dataclass(frozen=True)
class SlipLayout:
    profile_id: str
    city_id: str
    title: str
    number_label: str
    validity_days: int
    use_at: str
    note: str
    qr: str
    thumbnail: bool
    blocks: tuple[str, ...]

    def qr_payload(self, number: str) -> str:
        return self.qr.format(number=number)


@dataclass(frozen=True)
class Layouts:
    cities: dict[str, City]
    slips: dict[str, dict[str, Any]]  # profile id -> {"base": {...}, "city": {...}, "cities": [...]}
    province_zh: str = ""
    province_en: str = ""
    home: str = ""  # the city offered first
    groups: dict[str, dict[str, str]] | None = None  # group id -> {"zh", "en"}, in the file's order
    source: str = ""  # the file it was read from

    def city_or_none(self, key: str) -> City | None:
        """The city `key` names as a citizen types it (kiosk.receipt.cities.resolve), else None."""
        cid = resolve(key, {c.id: c.names() for c in self.cities.values()}, self._province_names())
        return self.cities[cid] if cid else None

    def city(self, key: str) -> City:
        """A city by id or name as typed (深圳, 深圳市, shenzhen, Shenzhen); unknown: an input error."""
        c = self.city_or_none(str(key))
        if c is None:
            where = f" of {self.province_zh}" if self.province_zh else ""
            raise InputError(
                f"unknown city {str(key).strip()!r}; `kiosk receipt cities` lists the {len(self.cities)} "
                f"cities{where}"
            )
        return c

    def city_by_region(self, region: str) -> City | None:
        """The city whose administrative division code is `region` (a number's region digits)."""
        return next((c for c in self.cities.values() if c.region == region), None)

    def _province_names(self) -> tuple[str, ...]:
        return tuple(n for n in (self.province_zh, self.province_en) if n)

    def ordered(self, ids: list[str]) -> list[City]:
        """`ids` with the home city first, the rest in the file's order."""
        return sorted((self.cities[c] for c in ids), key=lambda c: c.id != self.home)

    def cities_for(self, profile_id: str) -> list[City]:
        s = self._slip(profile_id)
        return self.ordered(s["cities"] or list(self.cities))

    def documents_for(self, city_key: str) -> list[str]:
        """The document types a receipt for this city serves."""
        cid = self.city(city_key).id
        return [p for p, s in self.slips.items() if not s["cities"] or cid in s["cities"]]

    def rows(self, profile_id: str | None = None) -> list[dict[str, Any]]:
        """`kiosk receipt cities`: each city (home first, or those one document serves), its code,
        names, group and the documents its receipt serves."""
        cities = self.cities_for(profile_id) if profile_id else self.ordered(list(self.cities))
        groups = self.groups or {}
        return [
            {
                "id": c.id,
                "region": c.region,
                "zh": c.name_zh,
                "en": c.name_en,
                "group": c.group,
                "group_zh": groups.get(c.group, {}).get("zh", ""),
                "home": c.id == self.home,
                "documents": self.documents_for(c.id),
            }
            for c in cities
        ]

    def with_home(self, key: str) -> Layouts:
        """The same layouts with another home city (a terminal's receipt.home_city)."""
        return replace(self, home=self.city(key).id)

    def _slip(self, profile_id: str) -> dict[str, Any]:
        if profile_id not in self.slips:
            raise InputError(f"unknown document type {profile_id!r}; known: {', '.join(sorted(self.slips))}")
        return self.slips[profile_id]

    def layout(self, profile_id: str, city_key: str) -> SlipLayout:
        s = self._slip(profile_id)
        city = self.city(city_key)
        if s["cities"] and city.id not in s["cities"]:
            raise InputError(
                f"city {city.id} is not served for {profile_id}; served: {', '.join(s['cities'])}"
            )
        merged = {**s["base"], **s["city"].get(city.id, {})}
        for k in NOT_PRINTED:
            merged.pop(k, None)
        merged["blocks"] = tuple(merged["blocks"])
        return SlipLayout(profile_id=profile_id, city_id=city.id, **merged)


def _check_value(where: str, key: str, value: Any, sources: dict[str, str] | None = None) -> None:
    if key == "source":
        if not isinstance(value, str) or value not in (sources or {}):
            raise LayoutError(f"{where}.source: expected an id from [sources], got {value!r}")
        return
    typ = SLIP_KEYS.get(key)
    if typ is None:
        raise LayoutError(f"{where}.{key}: unknown key")
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise LayoutError(f"{where}.{key}: expected {typ.__name__}, got {value!r}")
    if key == "blocks":
        for b in value:
            if b not in BLOCKS:
                raise LayoutError(f"{where}.blocks: unknown block {b!r}; known: {', '.join(BLOCKS)}")
        if "number" not in value:
            raise LayoutError(f"{where}.blocks: the number block is required")
    if key == "validity_days" and not 1 <= value <= 3650:
        raise LayoutError(f"{where}.validity_days: must be 1..3650")
    if key == "qr" and "{number}" not in value:
        raise LayoutError(f"{where}.qr: must contain {{number}}")


def _names(where: str, name: Any) -> dict[str, str]:
    ok = isinstance(name, dict) and set(name) == {"zh", "en"}
    if not (ok and all(isinstance(v, str) and v for v in name.values())):
        raise LayoutError(f"{where}.name: expected {{ zh = ..., en = ... }}")
    return name


def _code(where: str, region: Any) -> str:
    if not (isinstance(region, str) and len(region) == 6 and region.isdigit() and region.isascii()):
        raise LayoutError(f"{where}.region: expected a 6-digit administrative division code")
    return region


def parse_layouts(data: dict, source: str = "layouts.toml") -> Layouts:
    """Validate a parsed layouts file; `source` names the file in errors."""
    f = Path(source).name
    if data.get("schema_version") != SCHEMA_VERSION:
        raise LayoutError(f"{f}: schema_version must be {SCHEMA_VERSION}")
    unknown = set(data) - {"schema_version", "home", "province", "groups", "cities", "slips", "sources"}
    if unknown:
        raise LayoutError(f"{f}: {sorted(unknown)[0]}: unknown key")
    sources = data.get("sources") or {}
    if not (isinstance(sources, dict) and all(isinstance(v, str) for v in sources.values())):
        raise LayoutError(f"{f}: sources: expected id = \"where it comes from\"")
    province = data.get("province") or {}
    pname = {"zh": "", "en": ""}
    if province:
        if not isinstance(province, dict) or set(province) != {"name", "region"}:
            raise LayoutError(f"{f}: province: expected exactly name = {{zh, en}} and region")
        pname = _names(f"{f}: province", province["name"])
        pcode = _code(f"{f}: province", province["region"])
    groups: dict[str, dict[str, str]] = {}
    for gid, t in (data.get("groups") or {}).items():
        if not isinstance(t, dict) or set(t) != {"name"}:
            raise LayoutError(f"{f}: groups.{gid}: expected exactly name = {{zh, en}}")
        groups[gid] = _names(f"{f}: groups.{gid}", t["name"])
    cities: dict[str, City] = {}
    regions: dict[str, str] = {}
    for cid, t in (data.get("cities") or {}).items():
        where = f"{f}: cities.{cid}"
        if not isinstance(t, dict) or not {"name", "region"} <= set(t) <= {"name", "region", "group"}:
            raise LayoutError(f"{where}: expected name = {{zh, en}}, region and (optional) group")
        name, region = _names(where, t["name"]), _code(where, t["region"])
        if province and region[:2] != pcode[:2]:
            raise LayoutError(f"{where}.region: {region} is not in the province {pcode}")
        if region in regions:
            raise LayoutError(f"{where}.region: {region} is also the code of {regions[region]}")
        group = t.get("group", "")
        if groups and group not in groups:
            raise LayoutError(f"{where}.group: expected one of {', '.join(groups)}")
        if group and not groups:
            raise LayoutError(f"{where}.group: the file has no [groups]")
        regions[region] = cid
        cities[cid] = City(cid, name["zh"], name["en"], region, group)
    if not cities:
        raise LayoutError(f"{f}: cities: at least one city is needed")
    _, clashes = index({c.id: c.names() for c in cities.values()})
    if clashes:
        form, ids = next(iter(clashes.items()))
        raise LayoutError(f"{f}: cities: {' and '.join(sorted(ids))} are both called {form!r}")
    home = data.get("home", next(iter(cities)))
    if home not in cities:
        raise LayoutError(f"{f}: home: {home!r} is not a city in [cities]")
    slips: dict[str, dict[str, Any]] = {}
    for pid, t in (data.get("slips") or {}).items():
        where = f"{f}: slips.{pid}"
        if not isinstance(t, dict):
            raise LayoutError(f"{where}: expected a table")
        base = {k: v for k, v in t.items() if k not in ("city", "cities")}
        for k, v in base.items():
            _check_value(where, k, v, sources)
        missing = set(SLIP_KEYS) - set(base)
        if missing:
            raise LayoutError(f"{where}.{sorted(missing)[0]}: missing")
        served = t.get("cities", [])
        if not isinstance(served, list) or any(c not in cities for c in served):
            raise LayoutError(f"{where}.cities: expected a list of ids from [cities]")
        overrides = t.get("city", {})
        for cid, o in overrides.items():
            if cid not in cities:
                raise LayoutError(f"{where}.city.{cid}: not a city in [cities]")
            if not isinstance(o, dict):
                raise LayoutError(f"{where}.city.{cid}: expected a table")
            for k, v in o.items():
                _check_value(f"{where}.city.{cid}", k, v, sources)
        slips[pid] = {"base": base, "city": overrides, "cities": served}
    return Layouts(cities, slips, pname["zh"], pname["en"], home, groups or None, str(source))


@lru_cache(maxsize=4)
def _read(path: str) -> Layouts:
    try:
        return parse_layouts(tomllib.loads(Path(path).read_text(encoding="utf-8")), path)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LayoutError(f"cannot read slip layouts {path}: {exc}") from None


_active: Layouts | None = None


def load_layouts(path: str | Path | None = None) -> Layouts:
    """The layouts of `path`, or without one those chosen by `use_layouts` (default: Guangdong)."""
    if path is None:
        return _active or _read(str(LAYOUTS_FILE))
    return _read(str(path))


def use_layouts(path: str | Path | None = None, home: str = "") -> Layouts:
    """Make a province's file (None or "": the bundled one) and home city the process's layouts.

    Called by kiosk.receipt.wiring from the configuration before anything issues or lists; a wrong
    file or home city is a LayoutError naming it.
    """
    global _active
    lay = _read(str(path or LAYOUTS_FILE))
    if home:
        c = lay.city_or_none(home)
        if c is None:
            where = Path(lay.source).name
            raise LayoutError(f"config key receipt.home_city: {home!r} is not a city of {where}")
        lay = replace(lay, home=c.id)
    _active = lay
    return lay
