"""`config get` / `config set`: dotted keys of the typed configuration, written to the technician's file.

Only keys of ``kiosk.config.CONSOLE_KEYS`` can be set (the PIN hash only through the `pin` command);
everything root acts on stays in the root-owned base file. The technician's file is edited with
tomlkit, so its comments and layout stay. The new file must pass the loader's validation and the
start checks on top of the base file before it replaces the old one (temp file, fsync, rename), under
a lock: the service, and the console while the service is down, both write it.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import tomllib
from collections.abc import Iterator
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, get_type_hints

import tomlkit
from tomlkit.exceptions import TOMLKitError

from kiosk.config import (
    CONSOLE_KEYS,
    SECRET_KEYS,
    Config,
    ConfigError,
    apply_local,
    load_base,
    local_path,
)
from kiosk.durable import write_atomic
from kiosk.errors import InputError

SECRET_SUFFIXES = ("_hash", "token", "secret", "password", "api_key")  # others' secrets: never shown
FIXED_KEYS = {"state_dir"}  # set by the unit's --state-dir, not by the file
LOCK_NAME = ".config.lock"


def is_secret(key: str) -> bool:
    return key in SECRET_KEYS or key.rsplit(".", 1)[-1].lower().endswith(SECRET_SUFFIXES)


def keys(cfg: Config | None = None) -> dict[str, Any]:
    """Every dotted key with its current value (secrets masked)."""
    cfg = cfg or Config()
    out: dict[str, Any] = {}

    def walk(obj: Any, prefix: str) -> None:
        for f in fields(obj):
            if not f.compare:  # Config.source: where it came from, not a setting
                continue
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
        if not is_dataclass(obj) or part not in {f.name for f in fields(obj) if f.compare}:
            raise InputError(f"unknown config key {key!r} (see `config get`)")
        typ = get_type_hints(type(obj))[part]
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
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InputError(f"{key}: control characters are not allowed in a value")
    return text


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


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One writer at a time (the service's handler, the console while the service is down)."""
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def set_value(base: Path, key: str, text: str, *, allow_secret: bool = False) -> Any:
    """Validate KEY = TEXT against the base file BASE and write it to BASE's technician file
    (``local/<name>``) atomically; returns the new value."""
    if key in FIXED_KEYS:
        raise InputError(f"{key} is set by the service's --state-dir, not by the configuration file")
    if is_secret(key) and not allow_secret:
        how = "use the `pin` command" if key in SECRET_KEYS else "it is root-only"
        raise InputError(f"{key} cannot be set with config set; {how}")
    parts, typ = _lookup(key)
    if key not in CONSOLE_KEYS and not (allow_secret and key in SECRET_KEYS):
        raise InputError(
            f"{key} is root-only: it is set in {base} by root (provisioning), not with config set"
        )
    value = parse_value(key, typ, text)
    base = Path(base)
    local = local_path(base)
    try:
        local.parent.mkdir(mode=0o770, exist_ok=True)
        with _locked(local.parent):
            try:
                doc = tomlkit.parse(local.read_text(encoding="utf-8"))
            except FileNotFoundError:
                doc = tomlkit.document()
            except (UnicodeDecodeError, TOMLKitError):
                doc = tomlkit.document()  # a damaged file is replaced (the loader was not using it)
            table: Any = doc
            for p in parts[:-1]:
                if p not in table or not isinstance(table[p], dict):
                    table[p] = tomlkit.table()
                table = table[p]
            table[parts[-1]] = value
            out = tomlkit.dumps(doc)
            if tomllib.loads(out) != doc.unwrap():  # what the loader will read is what we meant
                raise ConfigError(f"cannot write {key}: the value does not survive a TOML round trip")
            apply_local(load_base(base), out, local)  # ConfigError names the key that is wrong
            write_atomic(local, out.encode("utf-8"), mode=0o640)
    except OSError as exc:
        raise ConfigError(f"cannot write the configuration {local}: {exc.strerror or exc}") from None
    return value
