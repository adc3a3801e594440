"""Versioned document profiles loaded from a TOML data file and validated against a schema.

Every error names the offending key, so a reviewer of a profile change sees what is wrong; adding
a document or a city variant is a data change only.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from kiosk.errors import KioskError
from kiosk.text import entries

PROFILES_FILE = Path(__file__).with_name("profiles.toml")
SCHEMA_VERSION = 1

RULE_CHECKS = {
    "face_width": "face_size",
    "inter_eye": "face_size",
    "head_length": "head_length",
    "head_top": "head_top_margin",
    "eye_line": "eye_line",
}
UNITS = ("px", "width", "height")
THRESHOLD_KEYS = {
    "yaw_max_deg": float,
    "pitch_max_deg": float,
    "roll_max_deg": float,
    "eyes_open_min": float,
    "mouth_open_max": float,
    "face_centered_max": float,
    "illumination_uniformity_min": float,
    "exposure_mean": list,
    "exposure_under_max": float,
    "exposure_over_max": float,
    "dynamic_range_min": float,
    "sharpness_min": float,
    "background_uniformity_max": float,
    "white_clothing_max": float,
    "glasses_glare_max": float,
    "head_in_frame_margin": float,
    "head_in_frame_touch_max": float,
    "background_off_color_max": float,
    "background_color_tolerance": float,
    "source_enlargement_max": float,
}
SEVERITIES = ("error", "warning")


class ProfileError(KioskError):
    """The profile data file is invalid, or a profile id is unknown (exit 2: unusable input)."""

    exit_code = 2


@dataclass(frozen=True)
class Color:
    id: str
    name_zh: str
    name_en: str
    fill: tuple[int, int, int]
    min: tuple[int, int, int]
    max: tuple[int, int, int]
    max_spread: float | None = None


@dataclass(frozen=True)
class Rule:
    """One geometry rule; bounds are in pixels of the profile's nominal size."""

    kind: str
    min: float | None
    max: float | None
    enforce: bool = True

    @property
    def check_id(self) -> str:
        return RULE_CHECKS[self.kind]


@dataclass(frozen=True)
class Profile:
    id: str
    version: str
    document_zh: str
    document_en: str
    source: str
    cities: tuple[str, ...]
    size: tuple[int, int]
    size_max: tuple[int, int]
    dpi: int | None
    file_kb: tuple[float, float]
    backgrounds: tuple[Color, ...]
    rules: dict[str, Rule]
    priority: tuple[str, ...]
    thresholds: dict[str, Any]
    severity: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "version": self.version,
            "document": {"zh": self.document_zh, "en": self.document_en},
            "source": self.source,
            "cities": list(self.cities),
            "size": list(self.size),
            "size_max": list(self.size_max),
            "dpi": self.dpi,
            "file_kb": list(self.file_kb),
            "backgrounds": [
                {"id": c.id, "zh": c.name_zh, "en": c.name_en, "fill": list(c.fill)} for c in self.backgrounds
            ],
            "geometry": {
                k: {"min": r.min, "max": r.max, "enforce": r.enforce, "check": r.check_id}
                for k, r in self.rules.items()
            },
            "priority": list(self.priority),
            "thresholds": dict(self.thresholds),
        }


def _need(table: dict, key: str, where: str, types: type | tuple[type, ...]) -> Any:
    if key not in table:
        raise ProfileError(f"{where}.{key}: missing")
    return _typed(table[key], f"{where}.{key}", types)


def _typed(value: Any, where: str, types: type | tuple[type, ...]) -> Any:
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise ProfileError(f"{where}: expected {_tname(types)}, got {value!r}")
    if not isinstance(value, types):
        raise ProfileError(f"{where}: expected {_tname(types)}, got {value!r}")
    return value


def _tname(types: type | tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))


def _unknown(table: dict, allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ProfileError(f"{where}.{key}: unknown key")


def _numbers(value: Any, where: str, n: int, lo: float, hi: float) -> tuple:
    if not isinstance(value, list) or len(value) != n:
        raise ProfileError(f"{where}: expected a list of {n} numbers")
    for i, v in enumerate(value):
        _typed(v, f"{where}[{i}]", (int, float))
        if not lo <= v <= hi:
            raise ProfileError(f"{where}[{i}]: {v} is outside {lo}..{hi}")
    return tuple(value)


def _zh_en(value: Any, where: str) -> tuple[str, str]:
    _typed(value, where, dict)
    _unknown(value, {"zh", "en"}, where)
    return _need(value, "zh", where, str), _need(value, "en", where, str)


def _color(cid: str, table: Any) -> Color:
    where = f"colors.{cid}"
    _typed(table, where, dict)
    _unknown(table, {"name", "fill", "min", "max", "max_spread"}, where)
    zh, en = _zh_en(_need(table, "name", where, dict), f"{where}.name")
    fill = _numbers(_need(table, "fill", where, list), f"{where}.fill", 3, 0, 255)
    lo = _numbers(_need(table, "min", where, list), f"{where}.min", 3, 0, 255)
    hi = _numbers(_need(table, "max", where, list), f"{where}.max", 3, 0, 255)
    if any(a > b for a, b in zip(lo, hi, strict=True)):
        raise ProfileError(f"{where}.min: above {where}.max")
    if not all(a <= f <= b for a, f, b in zip(lo, fill, hi, strict=True)):
        raise ProfileError(f"{where}.fill: outside min..max")
    spread = table.get("max_spread")
    if spread is not None:
        _typed(spread, f"{where}.max_spread", (int, float))
    return Color(cid, zh, en, tuple(int(v) for v in fill), lo, hi, spread)


def _thresholds(table: Any, where: str) -> dict[str, Any]:
    _typed(table, where, dict)
    out = {}
    for key, value in table.items():
        if key not in THRESHOLD_KEYS:
            raise ProfileError(f"{where}.{key}: unknown key")
        if THRESHOLD_KEYS[key] is list:
            lo, hi = _numbers(value, f"{where}.{key}", 2, 0, 255)
            if lo > hi:
                raise ProfileError(f"{where}.{key}: min above max")
            out[key] = [float(lo), float(hi)]
        else:
            out[key] = float(_typed(value, f"{where}.{key}", (int, float)))
    return out


def _severity(table: Any, where: str) -> dict[str, str]:
    _typed(table, where, dict)
    for key, value in table.items():
        if _typed(value, f"{where}.{key}", str) not in SEVERITIES:
            raise ProfileError(f"{where}.{key}: expected one of {', '.join(SEVERITIES)}")
    return dict(table)


def _rule(kind: str, table: Any, where: str, size: tuple[int, int]) -> Rule:
    if kind not in RULE_CHECKS:
        raise ProfileError(f"{where}: unknown geometry rule (known: {', '.join(RULE_CHECKS)})")
    _typed(table, where, dict)
    _unknown(table, {"min", "max", "unit", "enforce"}, where)
    unit = _typed(table.get("unit", "px"), f"{where}.unit", str)
    if unit not in UNITS:
        raise ProfileError(f"{where}.unit: expected one of {', '.join(UNITS)}")
    factor = {"px": 1.0, "width": size[0], "height": size[1]}[unit]
    bounds = []
    for key in ("min", "max"):
        v = table.get(key)
        if v is not None:
            _typed(v, f"{where}.{key}", (int, float))
            if v < 0:
                raise ProfileError(f"{where}.{key}: must not be negative")
            v = float(v) * factor
        bounds.append(v)
    if bounds == [None, None]:
        raise ProfileError(f"{where}: needs min or max")
    if None not in bounds and bounds[0] > bounds[1]:
        raise ProfileError(f"{where}.min: above {where}.max")
    enforce = _typed(table.get("enforce", True), f"{where}.enforce", bool)
    return Rule(kind, bounds[0], bounds[1], enforce)


PROFILE_KEYS = {
    "version",
    "document",
    "source",
    "cities",
    "size",
    "size_max",
    "dpi",
    "file_kb",
    "backgrounds",
    "priority",
    "geometry",
    "thresholds",
    "severity",
}


def _profile(pid: str, table: Any, colors: dict[str, Color], defaults: dict, severity: dict) -> Profile:
    where = f"profiles.{pid}"
    _typed(table, where, dict)
    _unknown(table, PROFILE_KEYS, where)
    zh, en = _zh_en(_need(table, "document", where, dict), f"{where}.document")
    size = tuple(int(v) for v in _numbers(_need(table, "size", where, list), f"{where}.size", 2, 64, 10000))
    size_max = tuple(
        int(v) for v in _numbers(table.get("size_max", list(size)), f"{where}.size_max", 2, 64, 10000)
    )
    if size_max[0] < size[0] or size_max[1] < size[1]:
        raise ProfileError(f"{where}.size_max: smaller than size")
    dpi = table.get("dpi")
    if dpi is not None and (_typed(dpi, f"{where}.dpi", int) < 72 or dpi > 1200):
        raise ProfileError(f"{where}.dpi: {dpi} is outside 72..1200")
    kb = _numbers(_need(table, "file_kb", where, list), f"{where}.file_kb", 2, 1, 10000)
    if kb[0] >= kb[1]:
        raise ProfileError(f"{where}.file_kb: min must be below max")
    bg_ids = _need(table, "backgrounds", where, list)
    if not bg_ids:
        raise ProfileError(f"{where}.backgrounds: needs at least one colour")
    backgrounds = []
    for i, cid in enumerate(bg_ids):
        if _typed(cid, f"{where}.backgrounds[{i}]", str) not in colors:
            raise ProfileError(f"{where}.backgrounds[{i}]: unknown colour {cid!r}")
        backgrounds.append(colors[cid])
    geometry = _typed(table.get("geometry", {}), f"{where}.geometry", dict)
    rules = {k: _rule(k, v, f"{where}.geometry.{k}", size) for k, v in geometry.items()}
    if "face_width" in rules and "inter_eye" in rules:
        raise ProfileError(f"{where}.geometry: face_width and inter_eye both define face_size; keep one")
    if not {"face_width", "inter_eye", "head_length"} & set(rules):
        raise ProfileError(f"{where}.geometry: needs a size rule (face_width, inter_eye or head_length)")
    if not {"head_top", "eye_line"} & set(rules):
        raise ProfileError(f"{where}.geometry: needs a vertical rule (head_top or eye_line)")
    priority = _need(table, "priority", where, list)
    for i, k in enumerate(priority):
        if _typed(k, f"{where}.priority[{i}]", str) not in rules:
            raise ProfileError(f"{where}.priority[{i}]: {k!r} is not a geometry rule of this profile")
    if sorted(priority) != sorted(rules):
        raise ProfileError(f"{where}.priority: must list each geometry rule exactly once")
    cities = _typed(table.get("cities", []), f"{where}.cities", list)
    for i, c in enumerate(cities):
        _typed(c, f"{where}.cities[{i}]", str)
    thresholds = {**defaults, **_thresholds(table.get("thresholds", {}), f"{where}.thresholds")}
    missing = sorted(set(THRESHOLD_KEYS) - set(thresholds))
    if missing:
        raise ProfileError(f"{where}.thresholds.{missing[0]}: missing (and no default)")
    return Profile(
        id=pid,
        version=_need(table, "version", where, str),
        document_zh=zh,
        document_en=en,
        source=_need(table, "source", where, str),
        cities=tuple(cities),
        size=size,
        size_max=size_max,
        dpi=dpi,
        file_kb=(float(kb[0]), float(kb[1])),
        backgrounds=tuple(backgrounds),
        rules=rules,
        priority=tuple(priority),
        thresholds=thresholds,
        severity={**severity, **_severity(table.get("severity", {}), f"{where}.severity")},
    )


def parse_profiles(data: dict) -> dict[str, Profile]:
    """Validate a parsed profiles document; raises ProfileError naming the first bad key."""
    _unknown(data, {"schema_version", "colors", "defaults", "profiles"}, "<root>")
    version = _need(data, "schema_version", "<root>", int)
    if version != SCHEMA_VERSION:
        raise ProfileError(f"schema_version: {version} is not supported (expected {SCHEMA_VERSION})")
    colors = {cid: _color(cid, t) for cid, t in _need(data, "colors", "<root>", dict).items()}
    defaults_t = _typed(data.get("defaults", {}), "defaults", dict)
    _unknown(defaults_t, {"thresholds", "severity"}, "defaults")
    defaults = _thresholds(defaults_t.get("thresholds", {}), "defaults.thresholds")
    severity = _severity(defaults_t.get("severity", {}), "defaults.severity")
    profiles = _need(data, "profiles", "<root>", dict)
    if not profiles:
        raise ProfileError("profiles: no profile defined")
    return {pid: _profile(pid, t, colors, defaults, severity) for pid, t in profiles.items()}


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path.name} is not valid TOML: {exc}") from None


@lru_cache(maxsize=4)
def load_profiles(path: str | Path = PROFILES_FILE) -> dict[str, Profile]:
    """All profiles of a data file, validated once and cached."""
    path = Path(path)
    try:
        return parse_profiles(_read_toml(path))
    except ProfileError as exc:
        raise ProfileError(f"{path.name}: {exc}") from None


def get_profile(profile_id: str, path: str | Path = PROFILES_FILE) -> Profile:
    profiles = load_profiles(path)
    if profile_id not in profiles:
        raise ProfileError(f"unknown profile {profile_id!r} (known: {', '.join(sorted(profiles))})")
    return profiles[profile_id]


@lru_cache(maxsize=1)
def load_messages() -> dict[str, dict[str, dict[str, str]]]:
    """Citizen-facing messages: {check_id: {outcome: {"zh", "en"}}}, plus "not_measured".

    The texts are the "check.*" entries of the bilingual catalogue (kiosk/text/check.toml).
    """
    out: dict[str, dict[str, dict[str, str]]] = {}
    for key, entry in entries("check").items():
        check_id, _, outcome = key.partition(".")
        out.setdefault(check_id, {})[outcome] = entry
    return out
