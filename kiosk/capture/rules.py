"""The guidance policy file (guidance.toml): checks in priority order, hysteresis bands, the prompt
of each (texts: kiosk/text/prompt.toml) and the lighting loop's constants, validated once with
errors that name the key."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from kiosk.errors import KioskError
from kiosk.text import entries

RULES_FILE = Path(__file__).with_name("guidance.toml")
SCHEMA_VERSION = 1
MEASURES = (
    "faces",
    "face_width",
    "offset_x",
    "offset_y",
    "roll",
    "yaw",
    "pitch",
    "eyes",
    "mouth",
    "balance",
    "exposure",
    "motion",
    "covered",
    "glare",
    "sharpness",
)
BANDS = ("low", "high", "abs")
LIGHTING_KEYS = (
    "target",
    "gain_balance",
    "gain_exposure",
    "start",
    "idle",
    "tolerance_balance",
    "tolerance_exposure",
)


class RulesError(KioskError):
    exit_code = 2


@dataclass(frozen=True)
class Band:
    kind: str  # low | high | abs
    enter: float
    exit: float
    prompt: str
    profile: str | None = None  # enter/exit are multiples of this profile threshold

    def scaled(self, thresholds: dict[str, Any]) -> Band:
        if self.profile is None:
            return self
        if self.profile not in thresholds or not isinstance(thresholds[self.profile], (int, float)):
            raise RulesError(f"guidance: profile threshold {self.profile!r} is missing or not a number")
        k = float(thresholds[self.profile])
        return Band(self.kind, self.enter * k, self.exit * k, self.prompt, None)


@dataclass(frozen=True)
class Check:
    id: str
    measure: str
    bands: tuple[Band, ...]
    confirm_s: float | None = None  # this check's own time hysteresis (None: the rules' confirm_s)


@dataclass(frozen=True)
class Rules:
    checks: tuple[Check, ...]
    prompts: dict[str, dict[str, str]]  # id -> {"zh", "en"}
    confirm_s: float
    target_eye_y: float
    motion_smoothing: float
    lighting: dict[str, float]

    def for_profile(self, thresholds: dict[str, Any]) -> Rules:
        """The same rules with profile-relative bands turned into numbers for one document."""
        checks = tuple(
            Check(c.id, c.measure, tuple(b.scaled(thresholds) for b in c.bands), c.confirm_s)
            for c in self.checks
        )
        for c in checks:
            for b in c.bands:
                _band_order(b, f"check {c.id}.{b.kind}")
        return Rules(
            checks, self.prompts, self.confirm_s, self.target_eye_y, self.motion_smoothing, self.lighting
        )

    def confirm(self, check: Check) -> float:
        """How long the check must fail before its prompt shows."""
        return self.confirm_s if check.confirm_s is None else check.confirm_s

    def text(self, prompt: str | None) -> dict[str, str] | None:
        return None if prompt is None else self.prompts[prompt]


def _num(table: dict, key: str, where: str) -> float:
    if key not in table:
        raise RulesError(f"{where}.{key}: missing")
    v = table[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise RulesError(f"{where}.{key}: expected a number, got {v!r}")
    return float(v)


def _band_order(b: Band, where: str) -> None:
    if b.kind == "low" and b.exit < b.enter:
        raise RulesError(f"{where}: exit must be >= enter for a low band (hysteresis)")
    if b.kind in ("high", "abs") and b.exit > b.enter:
        raise RulesError(f"{where}: exit must be <= enter for a {b.kind} band (hysteresis)")
    if b.kind == "abs" and b.profile is None and b.exit < 0:
        raise RulesError(f"{where}: an abs band needs non-negative bounds")


def parse_rules(data: dict) -> Rules:
    for key in data:
        if key not in (
            "schema_version",
            "confirm_s",
            "target_eye_y",
            "motion_smoothing",
            "check",
            "lighting",
        ):
            raise RulesError(f"{key}: unknown key")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise RulesError(f"schema_version: expected {SCHEMA_VERSION}")
    prompts = entries("prompt")  # the texts live in the bilingual catalogue, kiosk/text/prompt.toml
    checks_t = data.get("check")
    if not isinstance(checks_t, list) or not checks_t:
        raise RulesError("check: no [[check]] entries")
    checks, seen = [], set()
    for i, t in enumerate(checks_t):
        where = f"check[{i}]"
        if not isinstance(t, dict):
            raise RulesError(f"{where}: expected a table")
        cid = t.get("id")
        if not isinstance(cid, str) or not cid or cid in seen:
            raise RulesError(f"{where}.id: missing or duplicate")
        seen.add(cid)
        where = f"check {cid}"
        if t.get("measure") not in MEASURES:
            raise RulesError(f"{where}.measure: expected one of {', '.join(MEASURES)}")
        bands = []
        confirm_s = _num(t, "confirm_s", where) if "confirm_s" in t else None
        if confirm_s is not None and confirm_s < 0:
            raise RulesError(f"{where}.confirm_s: must be >= 0")
        for key, bt in t.items():
            if key in ("id", "measure", "confirm_s"):
                continue
            if key not in BANDS:
                raise RulesError(f"{where}.{key}: unknown key")
            if not isinstance(bt, dict):
                raise RulesError(f"{where}.{key}: expected a table")
            for k in bt:
                if k not in ("enter", "exit", "prompt", "profile"):
                    raise RulesError(f"{where}.{key}.{k}: unknown key")
            prompt = bt.get("prompt")
            if prompt not in prompts:
                raise RulesError(f"{where}.{key}.prompt: {prompt!r} has no text in kiosk/text/prompt.toml")
            profile = bt.get("profile")
            if profile is not None and not isinstance(profile, str):
                raise RulesError(f"{where}.{key}.profile: expected a threshold name")
            band = Band(
                key, _num(bt, "enter", f"{where}.{key}"), _num(bt, "exit", f"{where}.{key}"), prompt, profile
            )
            _band_order(band, f"{where}.{key}")
            bands.append(band)
        if not bands:
            raise RulesError(f"{where}: needs a low, high or abs band")
        checks.append(Check(cid, t["measure"], tuple(bands), confirm_s))
    light_t = data.get("lighting")
    if not isinstance(light_t, dict):
        raise RulesError("lighting: missing")
    for k in light_t:
        if k not in LIGHTING_KEYS:
            raise RulesError(f"lighting.{k}: unknown key")
    lighting = {k: _num(light_t, k, "lighting") for k in LIGHTING_KEYS}
    if not 0 < lighting["target"] < 255:
        raise RulesError("lighting.target: must be between 0 and 255")
    for k in ("start", "idle"):
        if not 0 <= lighting[k] <= 1:
            raise RulesError(f"lighting.{k}: must be between 0 and 1")
    confirm = _num(data, "confirm_s", "<root>") if "confirm_s" in data else 0.2
    eye_y = _num(data, "target_eye_y", "<root>") if "target_eye_y" in data else 0.42
    smoothing = _num(data, "motion_smoothing", "<root>") if "motion_smoothing" in data else 0.3
    if not 0 < smoothing <= 1:
        raise RulesError("motion_smoothing: must be in (0, 1]")
    if "perfect" not in prompts:
        raise RulesError("prompt.perfect: missing in kiosk/text (shown when every check holds)")
    return Rules(tuple(checks), prompts, confirm, eye_y, smoothing, lighting)


@lru_cache(maxsize=4)
def load_rules(path: str | Path = RULES_FILE) -> Rules:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{path.name} is not valid TOML: {exc}") from None
    try:
        return parse_rules(data)
    except RulesError as exc:
        raise RulesError(f"{path.name}: {exc}") from None
