"""Cities and slip layouts per document type and city, loaded from layouts.toml and validated.

Adding a city or changing what a slip says is a data change; every error names the offending key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from kiosk.errors import InputError, KioskError

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


class LayoutError(KioskError):
    exit_code = 2


@dataclass(frozen=True)
class City:
    id: str
    name_zh: str
    name_en: str
    region: str


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

    def city(self, key: str) -> City:
        """A city by id or Chinese name; an unknown city is an input error."""
        k = key.strip()
        for c in self.cities.values():
            if k.lower() == c.id or k == c.name_zh or k.lower() == c.name_en.lower():
                return c
        raise InputError(f"unknown city {key!r}; known: {', '.join(sorted(self.cities))}")

    def cities_for(self, profile_id: str) -> list[City]:
        s = self._slip(profile_id)
        return [self.cities[c] for c in (s["cities"] or list(self.cities))]  # file order: home city first

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
        merged["blocks"] = tuple(merged["blocks"])
        return SlipLayout(profile_id=profile_id, city_id=city.id, **merged)


def _check_value(where: str, key: str, value: Any) -> None:
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


def parse_layouts(data: dict) -> Layouts:
    if data.get("schema_version") != SCHEMA_VERSION:
        raise LayoutError(f"layouts.toml: schema_version must be {SCHEMA_VERSION}")
    cities: dict[str, City] = {}
    for cid, t in (data.get("cities") or {}).items():
        where = f"layouts.toml: cities.{cid}"
        if not isinstance(t, dict) or set(t) != {"name", "region"}:
            raise LayoutError(f"{where}: expected exactly name = {{zh, en}} and region")
        name, region = t["name"], t["region"]
        if not (
            isinstance(name, dict) and isinstance(name.get("zh"), str) and isinstance(name.get("en"), str)
        ):
            raise LayoutError(f"{where}.name: expected {{ zh = ..., en = ... }}")
        if not (isinstance(region, str) and len(region) == 6 and region.isdigit()):
            raise LayoutError(f"{where}.region: expected a 6-digit administrative division code")
        cities[cid] = City(cid, name["zh"], name["en"], region)
    if not cities:
        raise LayoutError("layouts.toml: cities: at least one city is needed")
    slips: dict[str, dict[str, Any]] = {}
    for pid, t in (data.get("slips") or {}).items():
        where = f"layouts.toml: slips.{pid}"
        if not isinstance(t, dict):
            raise LayoutError(f"{where}: expected a table")
        base = {k: v for k, v in t.items() if k not in ("city", "cities")}
        for k, v in base.items():
            _check_value(where, k, v)
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
                _check_value(f"{where}.city.{cid}", k, v)
        slips[pid] = {"base": base, "city": overrides, "cities": served}
    return Layouts(cities, slips)


@lru_cache(maxsize=2)
def load_layouts(path: str | Path = LAYOUTS_FILE) -> Layouts:
    try:
        return parse_layouts(tomllib.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LayoutError(f"cannot read slip layouts {path}: {exc}") from None
