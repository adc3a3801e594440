"""One typed configuration, validated at load; every error names the key.

Sources, later wins: built-in defaults, the TOML file (``--config`` / ``$KIOSK_CONFIG`` /
``/etc/kiosk/kiosk.toml`` when it exists), then ``--state-dir`` / ``$KIOSK_STATE_DIR``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, get_type_hints

from kiosk.errors import KioskError

SYSTEM_CONFIG = Path("/etc/kiosk/kiosk.toml")
SYSTEM_STATE = Path("/var/lib/kiosk")


class ConfigError(KioskError):
    exit_code = 2


@dataclass(frozen=True)
class VisionConfig:
    num_threads: int = 2  # TFLite interpreter threads
    min_detection_score: float = 0.5
    min_presence: float = 0.5  # below this the tracked face is lost and the detector runs again
    analysis_max_side: int = 1280  # larger images are analysed on a downscaled copy
    iris: bool = True  # run the iris model for gaze


@dataclass(frozen=True)
class Config:
    state_dir: Path = field(default_factory=lambda: default_state_dir())
    vision: VisionConfig = field(default_factory=VisionConfig)


def default_state_dir() -> Path:
    if SYSTEM_STATE.is_dir() and os.access(SYSTEM_STATE, os.W_OK):
        return SYSTEM_STATE
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "kiosk"


def _coerce(key: str, typ: Any, value: Any) -> Any:
    if typ is bool:
        if isinstance(value, bool):
            return value
    elif typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif typ is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif typ is str:
        if isinstance(value, str):
            return value
    elif typ is Path:
        if isinstance(value, str) and value:
            return Path(value)
    else:
        return value
    raise ConfigError(f"config key {key}: expected {typ.__name__}, got {value!r}")


def _merge(obj: Any, data: dict, prefix: str = "") -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"config key {prefix.rstrip('.') or '<root>'}: expected a table")
    hints = get_type_hints(type(obj))
    known = {f.name for f in fields(obj)}
    changes = {}
    for key, value in data.items():
        full = prefix + key
        if key not in known:
            raise ConfigError(f"config key {full}: unknown key")
        current = getattr(obj, key)
        if is_dataclass(current):
            changes[key] = _merge(current, value, full + ".")
        else:
            changes[key] = _coerce(full, hints[key], value)
    new = replace(obj, **changes)
    _validate(new, prefix)
    return new


def _validate(obj: Any, prefix: str) -> None:
    if isinstance(obj, VisionConfig):
        if not 1 <= obj.num_threads <= 16:
            raise ConfigError(f"config key {prefix}num_threads: must be between 1 and 16")
        for name in ("min_detection_score", "min_presence"):
            if not 0.0 < getattr(obj, name) < 1.0:
                raise ConfigError(f"config key {prefix}{name}: must be between 0 and 1")
        if obj.analysis_max_side < 256:
            raise ConfigError(f"config key {prefix}analysis_max_side: must be at least 256")


def load_config(path: str | Path | None = None, state_dir: str | Path | None = None) -> Config:
    """Load and validate the configuration; a missing explicit file is an error, a missing default is not."""
    path = path or os.environ.get("KIOSK_CONFIG")
    cfg = Config()
    if path is None and SYSTEM_CONFIG.exists():
        path = SYSTEM_CONFIG
    if path is not None:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {p}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {p}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
        cfg = _merge(cfg, data)
    state_dir = state_dir or os.environ.get("KIOSK_STATE_DIR")
    if state_dir:
        cfg = replace(cfg, state_dir=Path(state_dir))
    return cfg
