"""The terminal's state as published on MQTT, and the events its changes announce.

Whatever the service hands over (a snapshot of counts and device states) is copied through a fixed
schema: known keys only, strings only as short codes or version numbers, counts only as integers.
A citizen's image number, photo or choices therefore cannot reach the broker even if a snapshot
carried them by mistake: there is no field for them and no string that could hold them.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

POLICY_FILE = Path(__file__).with_name("policy.toml")

_CODE = re.compile(r"[a-z][a-z0-9_-]{0,31}")  # paper_out, rolled-back, guidance: never a number
_VERSION = re.compile(r"\d{1,4}(\.\d{1,6}){0,3}([.+-][A-Za-z][A-Za-z0-9.]{0,15})?")  # 1.4.2, 0.1.0.dev3


@lru_cache(maxsize=1)
def policy() -> dict[str, Any]:
    """kiosk/monitor/policy.toml: event rules, session outcomes, what the watcher calls a problem."""
    with POLICY_FILE.open("rb") as f:
        return tomllib.load(f)


def _code(v: Any) -> str | None:
    return v if isinstance(v, str) and _CODE.fullmatch(v) else None


def _version(v: Any) -> str | None:
    return v if isinstance(v, str) and _VERSION.fullmatch(v) else None


def _count(v: Any) -> int | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v < 0:
        return None
    return int(v)


def _flag(v: Any) -> bool | None:
    return v if isinstance(v, bool) else None


def _temp(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not -50.0 <= v <= 150.0:
        return None
    return round(float(v), 1)


def _paper(v: Any) -> str:
    return v if v in ("ok", "low", "out") else "unknown"


def _store(v: Any) -> str:
    return v if v in ("ok", "refused", "error") else "unknown"


def _counts(v: Any) -> dict[str, int]:
    """{code: count}: outcome names and their counts, nothing else."""
    if not isinstance(v, Mapping):
        return {}
    out = {}
    for k, n in list(v.items())[:32]:
        if _code(k) is not None and _count(n) is not None:
            out[k] = _count(n)
    return out


Clean = Callable[[Any], Any]

# The state JSON, field by field: (name, how a value is cleaned) or (name, nested schema).
SCHEMA: dict[str, Any] = {
    "version": _version,
    "release": _version,
    "update": {"phase": _code, "pending": _version, "last": _code, "last_at": _count},
    "uptime_s": _count,
    "session": _code,
    "camera_ok": _flag,
    "lights_ok": _flag,
    "printer": {"paper": _paper, "fault": _code},
    "queued_prints": _count,
    "outbox": {"backlog": _count, "oldest_s": _count},
    "platform_reachable": _flag,
    "numbers_today": _count,
    "sessions_today": _counts,
    "store": _store,
    "disk_free_mb": _count,
    "cpu_temp_c": _temp,
    "monitor": {"dropped": _count, "reconnects": _count},
    "at": _count,  # when this state was taken (epoch seconds): "offline since" for a watcher
}
# Fields that change all the time: a change in them alone is not worth a message before state_every_s.
VOLATILE = frozenset({"uptime_s", "disk_free_mb", "cpu_temp_c", "at", "monitor"})


def clean(data: Mapping[str, Any], schema: Mapping[str, Any] = SCHEMA) -> dict[str, Any]:
    """The snapshot through the schema: every schema field present (None when missing or unfit)."""
    out: dict[str, Any] = {}
    for key, rule in schema.items():
        value = data.get(key) if isinstance(data, Mapping) else None
        if isinstance(rule, dict):
            out[key] = clean(value if isinstance(value, Mapping) else {}, rule)
        else:
            out[key] = rule(value)
    return out


def essence(state: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a state whose change is published at once."""
    return {k: v for k, v in state.items() if k not in VOLATILE}


def _get(state: Mapping[str, Any] | None, dotted: str) -> Any:
    value: Any = state
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def events(old: Mapping[str, Any] | None, new: Mapping[str, Any], announced_update_at: int | None = None
           ) -> list[dict[str, Any]]:
    """The events a change of state announces (policy.toml). With no previous state (a start), only
    problems are announced, not recoveries; an update outcome newer than ``announced_update_at`` is."""
    out: list[dict[str, Any]] = []
    for rule in policy()["event"]:
        before, after = _get(old, rule["field"]), _get(new, rule["field"])
        if rule.get("recovery") and (old is None or before in (None, "unknown")):
            continue  # a recovery is news only after a known problem
        wanted = rule["to"]
        hit = after is not None if wanted == "*" else after == wanted
        if hit and (old is None or before != after):
            ev: dict[str, Any] = {"kind": rule["kind"]}
            if wanted == "*":
                ev["value"] = after  # a fault code, cleaned like the state's
            out.append(ev)
    last, at = _get(new, "update.last"), _get(new, "update.last_at")
    if last and at and (announced_update_at is None or at > announced_update_at):
        kind = policy()["update_events"].get(last)
        if kind:
            out.append({"kind": kind, "version": _get(new, "release")})
    return out


def event_kinds() -> frozenset[str]:
    p = policy()
    return frozenset([r["kind"] for r in p["event"]] + list(p["update_events"].values()))


def outcome(left: str) -> str:
    """How a session that returned to idle from state ``left`` is counted."""
    table = policy()["outcomes"]
    return table.get(left, table["default"])
