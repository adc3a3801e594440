"""The console's commands, served by the service (``console.*`` on the service API).

The service calls ``register_console_handlers(api, context)`` with whatever parts it has; a
part that is missing (no printer configured, hardware not started) makes its command answer
"not available" instead of failing. Nothing here returns image data: camera answers are sizes
and brightness numbers only, so no citizen's photo can leave through the console.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from kiosk import __version__, config_edit
from kiosk.config import Config, load_config
from kiosk.errors import InputError, KioskError
from kiosk.maintenance.audit import ACTOR, AuditSink
from kiosk.maintenance.parts import CameraPart, MaintenanceContext
from kiosk.service_api import ServiceApi

T = TypeVar("T")
IDLE_STATES = {"idle", ""}  # kiosk.capture.session.State: anything else has a citizen at the terminal


class NotAvailable(KioskError):
    """The part a command needs is not present in this service."""


def _need(obj: T | None, what: str) -> T:
    if obj is None:
        raise NotAvailable(f"{what} not available in this service")
    return obj


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_json"):
        return value.to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def session_active(ctx: MaintenanceContext) -> bool:
    state = getattr(ctx.session, "state", None) if ctx.session is not None else None
    name = str(getattr(state, "value", state) or "").lower()
    if ctx.session is not None and name not in IDLE_STATES:
        return True
    try:
        from kiosk.fleet.inhibit import session_running

        return session_running(ctx.state_dir)
    except ImportError:
        return False


def _idle_only(ctx: MaintenanceContext, what: str) -> None:
    """Tests that drive the camera, the LEDs or the printer would disturb a citizen being served."""
    if session_active(ctx):
        raise KioskError(f"a citizen's session is running; {what} when the terminal is idle")


def _brightness(rgb: Any) -> dict[str, float]:
    """Mean level of the left and right halves: enough to see an LED's effect, nothing of a face."""
    import numpy as np

    a = np.asarray(rgb, dtype=np.float32)
    h, w = a.shape[:2]
    return {"left": round(float(a[:, : w // 2].mean()), 1), "right": round(float(a[:, w // 2 :].mean()), 1)}


def test_slip_bytes(text: str) -> bytes:
    """A short ESC/POS test slip: init, centred title, the text, feed, partial cut."""
    esc_init, center, left, bold_on, bold_off = (
        b"\x1b@",
        b"\x1ba\x01",
        b"\x1ba\x00",
        b"\x1bE\x01",
        b"\x1bE\x00",
    )
    body = text.encode("ascii", "replace")
    return (
        esc_init
        + center
        + bold_on
        + b"KIOSK TEST SLIP\n"
        + bold_off
        + left
        + body
        + b"\n"
        + b"\x1bd\x04"
        + b"\x1dV\x42\x00"
    )


class ConsoleHandlers:
    """One method per console command; each takes the request's args and returns plain JSON."""

    def __init__(self, ctx: MaintenanceContext) -> None:
        self.ctx = ctx
        self.audit = AuditSink(ctx.store, ctx.state_dir)
        self._lock = threading.Lock()  # one console command at a time against the parts
        fallback = ctx.config.source.fallback
        if fallback:  # the service started without the technician's latest changes: say so
            self.audit.record("service", "config-fallback", fallback)

    def _current(self) -> Config:
        """The configuration as the files are now (a setting changed since the start counts)."""
        src = self.ctx.config.source
        return load_config(src.base, self.ctx.state_dir) if src.base is not None else self.ctx.config

    # --- status -----------------------------------------------------------------------------------

    def status(self, args: dict[str, Any]) -> dict[str, Any]:
        ctx = self.ctx
        out: dict[str, Any] = {"version": __version__, "uptime_s": round(time.time() - ctx.started_at)}
        state = getattr(ctx.session, "state", None) if ctx.session is not None else None
        out["session"] = str(getattr(state, "value", state)) if state is not None else "not available"
        out["camera"] = self._try(lambda: _need(self._camera(), "camera").describe())
        out["lights"] = self._try(lambda: _need(ctx.lights, "lights").levels)
        out["printer"] = self._try(self._printer_status)
        try:
            du = shutil.disk_usage(ctx.state_dir)
            out["disk"] = f"{du.free / 2**30:.1f} GiB free of {du.total / 2**30:.1f} GiB"
        except OSError as exc:
            out["disk"] = f"unknown ({exc.strerror})"
        out["queue"] = self._try(self._queue_counts)
        lost = getattr(ctx.store, "lost", None)  # a lost database: no number is issued until acknowledged
        if lost is not None:
            out["numbers"] = self._try(lambda: f"REFUSED: {why}" if (why := lost()) else "issuing")
        out.update(self.config_state({}))
        return out

    def config_state(self, args: dict[str, Any]) -> dict[str, str]:
        """Whether the service runs on the technician's file as written (shown at every login)."""
        fallback = self.ctx.config.source.fallback
        return {"config": f"FALLBACK: {fallback}" if fallback else "as written"}

    def _camera(self) -> CameraPart | None:
        return self.ctx.camera() if self.ctx.camera is not None else None

    @staticmethod
    def _try(fn: Callable[[], Any]) -> Any:
        try:
            return _jsonable(fn())
        except KioskError as exc:
            return f"error: {exc}" if not isinstance(exc, NotAvailable) else "not available"
        except Exception as exc:  # a broken part is reported, not fatal to status
            return f"error: {type(exc).__name__}: {exc}"

    def _printer_status(self) -> Any:
        st = _need(self.ctx.printer, "printer").status()
        return "no status (this printer cannot answer)" if st is None else st

    def _queue_counts(self) -> dict[str, int]:
        rows = _need(self.ctx.store, "store").outbox()
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["state"]] = counts.get(r["state"], 0) + 1
        return counts

    # --- parts ------------------------------------------------------------------------------------

    def lights(self, args: dict[str, Any]) -> Any:
        lights = _need(self.ctx.lights, "lights")
        action = args.get("action", "status")
        if action != "status":
            _idle_only(self.ctx, f"lights {action} only")
        with self._lock:
            if action == "status":
                return {"levels": lights.levels}
            if action == "off":
                lights.off()
                return {"result": "off", "levels": lights.levels}
            if action == "set":
                left, right = _pct(args.get("left")), _pct(args.get("right"))
                lights.set({"left": left / 100, "right": right / 100})
                return {"result": "set", "levels": lights.levels}
            if action == "test":
                return self._light_test()
        raise InputError(f"lights: unknown action {action!r}")

    def _light_test(self) -> dict[str, Any]:
        """Each LED alone at full power, its effect on each half of the frame measured through the
        camera (the second frame after the change, so the exposure saw the new light)."""
        lights, camera = _need(self.ctx.lights, "lights"), self._camera()
        min_gain = self._current().console.selftest_min_led_gain
        before = lights.levels
        out: dict[str, Any] = {}
        weak = []
        try:
            lights.off()
            base = None
            if camera is not None:
                camera.frame()
                base = _brightness(camera.frame().rgb)
            for name in before:
                lights.set({**dict.fromkeys(before, 0.0), name: 1.0})
                if base is None or camera is None:
                    out[name] = "switched (no camera to measure)"
                    continue
                camera.frame()
                m = _brightness(camera.frame().rgb)
                dl, dr = m["left"] - base["left"], m["right"] - base["right"]
                if max(dl, dr) < min_gain:
                    weak.append(name)
                verdict = "ok" if max(dl, dr) >= min_gain else "NO EFFECT"
                out[name] = f"{verdict}, left half {dl:+.0f}, right half {dr:+.0f}"
        finally:
            lights.set(before)
        result = f"no effect: {', '.join(weak)}" if weak else "ok"
        return {"result": result, **out, "levels_restored": before}

    def camera(self, args: dict[str, Any]) -> Any:
        cam = _need(self._camera(), "camera")
        if args.get("action", "status") == "status":
            return _jsonable(cam.describe())
        _idle_only(self.ctx, "camera test only")
        with self._lock:
            t0 = time.monotonic()
            frame = cam.frame()
            ms = (time.monotonic() - t0) * 1000
        h, w = frame.rgb.shape[:2]
        return {
            "result": "frame ok",
            "size": f"{w}x{h}",
            "grab_ms": round(ms, 1),
            "brightness": _brightness(frame.rgb),
        }

    def printer(self, args: dict[str, Any]) -> Any:
        printer = _need(self.ctx.printer, "printer")
        if args.get("action", "status") == "status":
            return self._try(self._printer_status)
        _idle_only(self.ctx, "printer test only")
        with self._lock:
            printer.print_bytes(test_slip_bytes(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  kiosk {__version__}"))
        return {"result": "test slip printed"}

    def selftest(self, args: dict[str, Any]) -> dict[str, Any]:
        ctx = self.ctx
        _idle_only(ctx, "selftest only")
        out: dict[str, str] = {}

        def part(name: str, fn: Callable[[], str]) -> None:
            try:
                out[name] = "PASS " + fn()
            except NotAvailable:
                out[name] = "not available"
            except Exception as exc:  # one failed part must not hide the others
                out[name] = f"FAIL {exc}"

        def camera() -> str:
            f = _need(self._camera(), "camera").frame()
            h, w = f.rgb.shape[:2]
            return f"{w}x{h} frame"

        def lights() -> str:
            _need(ctx.lights, "lights")
            res = self._light_test()
            detail = "; ".join(f"{k} {v}" for k, v in res.items() if k not in ("result", "levels_restored"))
            if res["result"] != "ok":
                raise KioskError(f"{res['result']} ({detail})")
            return detail

        def printer() -> str:
            st = self._printer_status()
            fault = getattr(st, "fault", None)
            if fault:
                raise KioskError(f"printer reports {fault}")
            return "answers, no fault" if not isinstance(st, str) else st

        def slip() -> str:
            _need(ctx.printer, "printer").print_bytes(
                test_slip_bytes("selftest " + time.strftime("%H:%M:%S"))
            )
            return "test slip printed"

        with self._lock:
            part("camera", camera)
            part("lights", lights)
            part("printer", printer)
            if out["printer"].startswith("PASS"):
                part("test_slip", slip)
            else:
                out["test_slip"] = "skipped"
        failed = [k for k, v in out.items() if v.startswith("FAIL")]
        return {"result": "FAIL " + ", ".join(failed) if failed else "PASS", **out}

    # --- store ------------------------------------------------------------------------------------

    def receipt_reprint(self, args: dict[str, Any]) -> dict[str, Any]:
        number = str(args.get("number", ""))
        if not number:
            raise InputError("receipt reprint: give the NUMBER")
        _idle_only(self.ctx, "reprint")
        fn = _need(self.ctx.reprint, "reprint")  # the service's receipts do it (store, printer, layout)
        with self._lock:
            fault = fn(number, ACTOR)
        if fault:
            return {"result": f"queued, not printed: printer {fault}", "number": number}
        return {"result": "reprinted", "number": number}

    def store_acknowledge_loss(self, args: dict[str, Any]) -> dict[str, Any]:
        """The technician accepts a lost or replaced database; numbers continue past the marks (audited)."""
        fn = _need(self.ctx.acknowledge_loss, "the store")
        with self._lock:
            return _jsonable(fn(ACTOR))

    def queue(self, args: dict[str, Any]) -> Any:
        store = _need(self.ctx.store, "store")
        if args.get("action", "list") == "retry":
            fn = _need(self.ctx.retry_uploads, "upload retry")
            return {"result": "retry requested", "detail": _jsonable(fn(args.get("id")))}
        with self._lock:
            rows = store.outbox()
        keep = ("id", "state", "attempts", "last_error")
        return {"uploads": [{k: r.get(k) for k in keep} for r in rows[-50:]], "total": len(rows)}

    def counters(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return dict(_need(self.ctx.store, "store").counters())

    # --- configuration ----------------------------------------------------------------------------

    def _config_path(self) -> Path:
        base = self.ctx.config.source.base
        return Path(_need(base, "a configuration file (start the service with --config)"))

    def config_get(self, args: dict[str, Any]) -> Any:
        key = str(args.get("key", ""))
        return config_edit.get(self._current(), key)

    def config_set(self, args: dict[str, Any]) -> dict[str, Any]:
        key, text = str(args.get("key", "")), str(args.get("value", ""))
        with self._lock:
            value = config_edit.set_value(self._config_path(), key, text)
        return {
            "result": "written; takes effect after `service restart`",
            "key": key,
            "value": str(value) if isinstance(value, Path) else value,
        }

    def pin_set(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            config_edit.set_value(
                self._config_path(), "console.pin_hash", str(args.get("pin_hash", "")), allow_secret=True
            )
        return {"result": "PIN changed; it is needed from the next login"}

    # --- logs and audit ---------------------------------------------------------------------------

    def logs(self, args: dict[str, Any]) -> dict[str, Any]:
        n = _count(args.get("n", 20), 1, 500)
        if self.ctx.log_file is not None:
            return {"lines": _tail(Path(self.ctx.log_file), n)}
        if shutil.which("journalctl"):
            try:
                proc = subprocess.run(
                    [
                        "journalctl",
                        "-u",
                        self.ctx.journal_unit,
                        "-n",
                        str(n),
                        "-o",
                        "short-iso",
                        "--no-pager",
                    ],
                    capture_output=True,
                    timeout=10,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise KioskError(f"journalctl failed: {exc}") from None
            return {"lines": proc.stdout.decode("utf-8", "replace").splitlines()[-n:]}
        raise NotAvailable("logs not available (no log file and no journal)")

    def audit_record(self, args: dict[str, Any]) -> str:
        action, detail = str(args.get("action", ""))[:40], str(args.get("detail", ""))[:2000]
        if not action:
            raise InputError("audit entry without an action")
        self.audit.record(ACTOR, action, detail)
        return "recorded"

    def audit_tail(self, args: dict[str, Any]) -> list[str]:
        """The newest entries, one line each: time, actor, what, result; then how many lines of the
        log could not be read (torn by a power cut), if any: said, not a failure of the command."""
        lines = []
        tail = self.audit.tail(_count(args.get("n", 10), 1, 200))
        for r in tail.rows:
            at = time.strftime("%m-%d %H:%M:%S", time.localtime(r["at"]))
            what = str(r["detail"])
            try:
                d = json.loads(what)
                what = f"{d['command']} -> {d.get('result')}" if d.get("command") else str(d.get("result"))
            except (json.JSONDecodeError, AttributeError, RecursionError):
                pass  # not the console's JSON detail (a reprint's number, say): shown as it is
            lines.append(f"{at} {r['actor']} {r['action']}: {what}")
        if tail.damaged:
            plural = "s" if tail.damaged > 1 else ""
            lines.append(f"({tail.damaged} damaged line{plural} of the audit log skipped (a power cut?))")
        return lines

    # --- update, restart, power -------------------------------------------------------------------

    def update(self, args: dict[str, Any]) -> Any:
        updater = _need(self.ctx.updater, "the updater")
        action = args.get("action", "status")
        if action == "status":
            return _jsonable(updater.status())
        if action not in ("apply", "rollback"):
            raise InputError(f"update: unknown action {action!r}")
        if session_active(self.ctx):
            raise KioskError("a citizen's session is running; try again when the terminal is idle")
        from kiosk.fleet import manage
        from kiosk.fleet.updater import describe

        # the CLI's path: the updater lock (timer, CLI and console never run at once), then recovery of
        # an interrupted update before anything else
        bundle = str(args.get("bundle", ""))
        outcomes = manage.apply(updater, bundle) if action == "apply" else manage.rollback(updater)  # type: ignore[arg-type]
        return {"result": "; ".join(describe(o) for o in outcomes) or "nothing to do"}

    def service_restart(self, args: dict[str, Any]) -> dict[str, Any]:
        restart = _need(self.ctx.restart, "service restart")
        # answer first, restart a moment later: the console gets its reply before the socket goes away
        threading.Timer(0.3, restart).start()
        return {"result": "restarting the kiosk service"}

    def power(self, args: dict[str, Any]) -> dict[str, Any]:
        action = args.get("action")
        if action not in ("reboot", "shutdown"):
            raise InputError("power: action must be reboot or shutdown")
        power = _need(self.ctx.power, action)
        if session_active(self.ctx) and not args.get("force"):
            raise KioskError(
                f"a citizen's session is running; not doing {action} (add --force to do it anyway)"
            )
        threading.Timer(0.3, power, args=(action,)).start()
        return {"result": f"{action} in progress"}


def _pct(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 100:
        raise InputError("light levels are percentages 0 to 100")
    return v


def _count(v: Any, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise InputError("expected a whole number")
    return max(lo, min(hi, v))


def _tail(path: Path, n: int, block: int = 65536) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - block))
            data = f.read()
    except OSError as exc:
        raise KioskError(f"cannot read the log {path}: {exc.strerror}") from None
    return data.decode("utf-8", "replace").splitlines()[-n:]


def systemctl_power(action: str) -> None:
    """What the service wires as ``power`` on a real terminal (needs the polkit rule in systemd/)."""
    subprocess.run(["systemctl", action], check=False, timeout=30)


def register_console_handlers(api: ServiceApi, context: MaintenanceContext) -> ConsoleHandlers:
    """Register the console.* commands (the console falls back to console.status without `status`)."""
    h = ConsoleHandlers(context)
    table: dict[str, Callable[[dict[str, Any]], Any]] = {
        "console.status": h.status,
        "console.config_state": h.config_state,
        "console.selftest": h.selftest,
        "console.lights": h.lights,
        "console.camera": h.camera,
        "console.printer": h.printer,
        "console.receipt_reprint": h.receipt_reprint,
        "console.store_acknowledge_loss": h.store_acknowledge_loss,
        "console.queue": h.queue,
        "console.counters": h.counters,
        "console.config_get": h.config_get,
        "console.config_set": h.config_set,
        "console.pin_set": h.pin_set,
        "console.logs": h.logs,
        "console.audit": h.audit_record,
        "console.audit_tail": h.audit_tail,
        "console.update": h.update,
        "console.service_restart": h.service_restart,
        "console.power": h.power,
    }
    for name, fn in table.items():
        api.register(name, fn)
    return h
