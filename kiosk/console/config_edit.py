"""`config get` / `config set`: dotted keys of the typed configuration, changed atomically.

A new value is parsed by the type of its field, merged into the TOML file, and the result is
loaded through ``kiosk.config.load_config`` from a temporary file next to the real one: only a
file the loader accepts is fsynced and renamed over the old one, so a power cut or a bad value
never leaves a half-written or invalid configuration. Comments in the file are not kept (the
writer is a small TOML emitter for the value types the schema has).
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, get_type_hints

from kiosk.config import Config, ConfigError, load_config
from kiosk.durable import fsync_dir
from kiosk.errors import InputError

SECRET_KEYS = {"console.pin_hash"}  # never shown; changed with `pin`, not `config set`
SECRET_SUFFIXES = ("_hash", "token", "secret", "password", "api_key")  # others' secrets: never shown


def is_secret(key: str) -> bool:
    return key in SECRET_KEYS or key.rsplit(".", 1)[-1].lower().endswith(SECRET_SUFFIXES)


FIXED_KEYS = {"state_dir"}  # set by the unit's --state-dir, not by the file


def _field_types(obj: Any) -> dict[str, Any]:
    return get_type_hints(type(obj))


def keys(cfg: Config | None = None) -> dict[str, Any]:
    """Every settable dotted key with its current value (secrets masked)."""
    cfg = cfg or Config()
    out: dict[str, Any] = {}

    def walk(obj: Any, prefix: str) -> None:
        for f in fields(obj):
            v = getattr(obj, f.name)
            key = prefix + f.name
            if is_dataclass(v):
                walk(v, key + ".")
            elif key not in FIXED_KEYS:
                out[key] = _masked(v) if is_secret(key) else v

    walk(cfg, "")
    return out


def _lookup(key: str) -> tuple[list[str], Any]:
    """Path and type of a dotted key, or InputError naming the key."""
    parts = key.split(".")
    obj: Any = Config()
    for i, part in enumerate(parts):
        if not is_dataclass(obj) or part not in {f.name for f in fields(obj)}:
            raise InputError(f"unknown config key {key!r} (see `config get`)")
        typ = _field_types(obj)[part]
        obj = getattr(obj, part)
        if i == len(parts) - 1:
            if is_dataclass(obj):
                raise InputError(f"{key!r} is a section; give one of its keys")
            return parts, typ
    raise InputError(f"unknown config key {key!r}")


def parse_value(key: str, typ: Any, text: str) -> Any:
    """The technician's text as a value of the field's type; InputError with the expected type."""
    t = text.strip()
    if typ is bool:
        low = t.lower()
        if low in ("true", "yes", "on", "1"):
            return True
        if low in ("false", "no", "off", "0"):
            return False
        raise InputError(f"{key}: expected true or false, got {text!r}")
    if typ is int:
        try:
            return int(t, 10)
        except ValueError:
            raise InputError(f"{key}: expected a whole number, got {text!r}") from None
    if typ is float:
        try:
            v = float(t)
        except ValueError:
            raise InputError(f"{key}: expected a number, got {text!r}") from None
        if not math.isfinite(v):
            raise InputError(f"{key}: expected a finite number, got {text!r}")
        return v
    if typ is str or typ is Path:
        return text
    try:  # anything else: a TOML value (lists, say)
        return tomllib.loads("v = " + t)["v"]
    except tomllib.TOMLDecodeError:
        raise InputError(f"{key}: not a valid value: {text!r}") from None


def _masked(v: Any) -> str:
    return "(set)" if v else "(not set)"


def get(cfg: Config, key: str) -> dict[str, Any]:
    """KEY's value, or every key of a section ("session") or of everything (""), secrets masked."""
    listing = keys(cfg)
    if key in listing:
        return {key: str(listing[key]) if isinstance(listing[key], Path) else listing[key]}
    found = {
        k: str(v) if isinstance(v, Path) else v
        for k, v in listing.items()
        if k.startswith(key + ".") or not key
    }
    if not found:
        _lookup(key)  # the error that names the key
        raise InputError(f"{key} is not shown here")
    return found


def set_value(path: Path, key: str, text: str, *, allow_secret: bool = False) -> Any:
    """Validate and write KEY = TEXT into the file at PATH atomically; returns the new value."""
    if key in FIXED_KEYS:
        raise InputError(f"{key} is set by the service's --state-dir, not by the configuration file")
    if is_secret(key) and not allow_secret:
        how = "use the `pin` command" if key in SECRET_KEYS else "edit the configuration file"
        raise InputError(f"{key} cannot be set with config set; {how}")
    parts, typ = _lookup(key)
    value = parse_value(key, typ, text)
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the configuration {path}: {exc}") from None
    table = data
    for p in parts[:-1]:
        nxt = table.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"config key {p}: expected a table in {path}")
        table = nxt
    table[parts[-1]] = str(value) if isinstance(value, Path) else value
    text_out = dumps(data)
    if tomllib.loads(text_out) != data:  # the emitter must round-trip exactly
        raise ConfigError(f"cannot write {key}: the value does not survive a TOML round trip")
    write_atomic(path, text_out)
    return value


def write_atomic(path: Path, text: str) -> None:
    """Temp file in the same directory, validated by the loader, fsync, rename, fsync the directory."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        load_config(tmp)  # ConfigError names the key that is wrong
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        raise ConfigError(f"cannot write the configuration {path}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


# --- a small TOML emitter -------------------------------------------------------------------------


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        # JSON string escapes (\" \\ \n \uXXXX) are valid TOML basic-string escapes
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_scalar(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_scalar(x)}" for k, x in v.items()) + "}"
    raise ConfigError(f"cannot write a value of type {type(v).__name__} to TOML")


def _key(k: str) -> str:
    return k if k and all(c.isascii() and (c.isalnum() or c in "-_") for c in k) else json.dumps(k)


def dumps(data: dict[str, Any]) -> str:
    """TOML text of nested tables of scalars and lists (what the configuration holds)."""
    out: list[str] = []

    def table(d: dict[str, Any], name: str) -> None:
        plain = [(k, v) for k, v in d.items() if not isinstance(v, dict)]
        subs = [(k, v) for k, v in d.items() if isinstance(v, dict)]
        if name and (plain or not subs):
            out.append(f"\n[{name}]")
        for k, v in plain:
            out.append(f"{_key(k)} = {_scalar(v)}")
        for k, v in subs:
            table(v, f"{name}.{_key(k)}" if name else _key(k))

    table(data, "")
    return "\n".join(out).lstrip("\n") + "\n"
