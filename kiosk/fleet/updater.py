"""The A/B release switch: install, switch ``current``, restart, wait for health, commit or roll back.

Layout under the root (``/opt/kiosk`` on a terminal, a temporary tree in tests)::

    releases/<version>/      one directory per installed release (payload of its bundle)
    current -> releases/<v>  relative symlink, replaced atomically (rename + directory fsync)
    state/update.json        the persisted state machine (written atomically)
    state/tuf/root.json      trusted TUF root: its ``targets`` keys also sign bundle manifests

Every durable step is written to the state file *before* it is taken, so ``recover()`` (run at
the start of every command) can finish or undo whatever a power cut interrupted: the terminal
always ends on the old or the new release, never on a half-installed one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.durable import fsync_dir, write_atomic
from kiosk.errors import KioskError
from kiosk.fleet import bundle as bundle_mod
from kiosk.fleet.bundle import BundleError, parse_version
from kiosk.fleet.inhibit import exclusive_update
from kiosk.fleet.keys import trusted_targets_keys
from kiosk.fleet.service import ServiceControl
from kiosk.fleet.wheels import python_abi

EX_TEMPFAIL = 75  # "try again later": the timer's unit treats it as success (SuccessExitStatus=75)

IDLE, STAGING, STAGED, SWITCHING, VERIFYING, ROLLING_BACK = (
    "idle",
    "staging",
    "staged",
    "switching",
    "verifying",
    "rolling-back",
)


class UpdateRefused(KioskError):
    """The bundle is valid but must not be installed (older, failed before, wrong architecture)."""


class UpdateBusy(KioskError):
    """Another updater holds the lock."""


@dataclass(frozen=True)
class Policy:
    ready_timeout: float = 90.0  # restart -> READY=1
    stable_seconds: float = 60.0  # READY -> commit, with no crash or restart in between
    give_up_after: float = 7 * 24 * 3600.0  # deferred by sessions this long -> give up, clear status
    max_attempts: int = 2  # health checks cut short by a power cut before the release counts as failed
    arch: str = platform.machine()
    abi: str = python_abi()  # the Python the releases run on (/usr/bin/python3 on the terminal)


@dataclass(frozen=True)
class Outcome:
    status: str  # committed | rolled-back | deferred | gave-up | recovered | skipped | no-repository
    version: str | None
    message: str

    @property
    def exit_code(self) -> int:
        return {"deferred": EX_TEMPFAIL, "rolled-back": 1, "gave-up": 1}.get(self.status, 0)


def _checkpoint(name: str) -> None:
    """Fault injection for the power-cut tests: SIGKILL ourselves right after step ``name``."""
    if os.environ.get("KIOSK_UPDATE_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def write_json_atomic(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=1, sort_keys=True).encode("utf-8"), mode=0o644)


def _empty_state() -> dict[str, Any]:
    return {
        "phase": IDLE,
        "committed": None,
        "previous": None,
        "highest": None,
        "pending": None,
        "failed": {},
        "last": None,
    }


class Updater:
    def __init__(
        self, root: str | Path, service: ServiceControl, state_dir: str | Path, policy: Policy
    ) -> None:
        self.root = Path(root)
        self.service = service
        self.session_dir = Path(state_dir)  # where the service's session holds the inhibit lock
        self.policy = policy
        self.releases = self.root / "releases"
        self.current = self.root / "current"
        self.state_path = self.root / "state" / "update.json"
        self.trusted_root = self.root / "state" / "tuf" / "root.json"
        self._boot = False

    # --- state ---------------------------------------------------------------------------------

    def load_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return _empty_state()
        except (OSError, ValueError) as exc:
            raise KioskError(f"update state {self.state_path} is unreadable: {exc}") from None
        state = _empty_state()
        state.update(data)
        return state

    def _save(self, state: dict[str, Any]) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.state_path, state)

    def _last(self, state: dict[str, Any], status: str, version: str | None, message: str) -> Outcome:
        state["last"] = {"status": status, "version": version, "message": message, "at": int(time.time())}
        return Outcome(status, version, message)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One updater at a time (timer, console and a technician's shell may race)."""
        if not self.root.is_dir():
            raise KioskError(f"{self.root}: no release root here (provision the terminal or pass --root DIR)")
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.state_path.parent / "updater.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UpdateBusy("another update is running") from None
            yield
        finally:
            os.close(fd)

    # --- the current link ----------------------------------------------------------------------

    def current_version(self) -> str | None:
        try:
            target = os.readlink(self.current)
        except OSError:
            return None
        name = Path(target).name
        return name if (self.releases / name).is_dir() else None

    def _switch(self, version: str | None) -> None:
        """Point ``current`` at releases/<version> (or remove it) atomically and durably."""
        tmp = self.root / ".current.tmp"
        tmp.unlink(missing_ok=True)
        if version is None:
            self.current.unlink(missing_ok=True)
        else:
            os.symlink(f"releases/{version}", tmp)
            os.replace(tmp, self.current)
        fsync_dir(self.root)

    def _remove_release(self, version: str | None, state: dict[str, Any]) -> None:
        if version and version not in (state.get("committed"), state.get("previous")):
            shutil.rmtree(self.releases / version, ignore_errors=True)
            if self.releases.is_dir():
                fsync_dir(self.releases)

    # --- recovery ------------------------------------------------------------------------------

    def recover(self, boot: bool = False) -> Outcome | None:
        """Finish or undo an interrupted update; returns what was done, or None if nothing was.

        ``boot``: run before the service starts (kiosk-update-recover.service, Before=kiosk.service):
        only the link and the state are repaired; the service is never restarted or waited for, as
        its start job is queued behind this one (restarting it from here would deadlock the boot).
        """
        self._boot = boot
        state = self.load_state()
        phase = state["phase"]
        pending = state.get("pending") or {}
        version = pending.get("version")
        for stray in self.releases.glob(".staging-*") if self.releases.is_dir() else []:
            shutil.rmtree(stray, ignore_errors=True)
        (self.root / ".current.tmp").unlink(missing_ok=True)
        if phase == IDLE:
            if self.current_version() != state["committed"]:
                self._switch(state["committed"])
                self._restart_and_wait()
                return Outcome(
                    "recovered", state["committed"], "current link repaired to the committed release"
                )
            return None
        if phase == STAGING:
            self._remove_release(version, state)
            state.update(phase=IDLE, pending=None)
            self._save(state)
            return Outcome("recovered", version, f"interrupted while unpacking {version}; discarded")
        if phase == STAGED:
            if not (self.releases / version).is_dir():
                state.update(phase=IDLE, pending=None)
                self._save(state)
            return None
        if phase in (SWITCHING, VERIFYING):
            attempts = pending.get("attempts", 0)
            # Interrupted before the restart: not the release's fault. During the health check: it
            # may be the release that took the terminal down, so it counts towards the loop breaker.
            failed = phase == VERIFYING and attempts >= self.policy.max_attempts
            msg = f"update to {version} interrupted ({phase}); back on {state['committed'] or 'no release'}"
            if failed:
                state["failed"][version] = f"interrupted during the health check {attempts} times"
                msg += "; release marked failed"
            state.update(phase=ROLLING_BACK if failed else STAGED)
            self._save(state)
            link_was = self.current_version()
            self._switch(state["committed"])
            # After a real power cut the boot may have started the new release from the link.
            if phase == VERIFYING or link_was != state["committed"]:
                self._restart_and_wait()
            if failed:
                state.update(phase=IDLE, pending=None)
                self._remove_release(version, state)
            out = self._last(state, "recovered", version, msg)
            self._save(state)
            return out
        if phase == ROLLING_BACK:
            self._switch(state["committed"])
            self._restart_and_wait()
            state.update(phase=IDLE, pending=None)
            self._remove_release(version, state)
            out = self._last(state, "rolled-back", version, f"finished the rollback from {version}")
            self._save(state)
            return out
        raise KioskError(f"update state {self.state_path}: unknown phase {phase!r}")

    def _restart_and_wait(self) -> str | None:
        """Restart whatever ``current`` now is (nothing if no release) and wait for its READY."""
        if self.current_version() is None or self._boot:
            return None
        self.service.restart()
        return self.service.wait_ready(self.policy.ready_timeout)

    # --- apply ---------------------------------------------------------------------------------

    def _trust(self):
        return trusted_targets_keys(self.trusted_root)

    def check_acceptable(self, manifest: bundle_mod.Manifest, state: dict[str, Any]) -> None:
        v = manifest.version
        parse_version(v)  # again at install: the version names the release directory
        if manifest.arch not in ("any", self.policy.arch):
            raise UpdateRefused(
                f"bundle {v} is built for {manifest.arch}, this terminal is {self.policy.arch}"
            )
        if manifest.abi not in (None, self.policy.abi):
            raise UpdateRefused(
                f"bundle {v} is built for Python {manifest.abi}, this terminal runs {self.policy.abi}"
            )
        if v in state["failed"]:
            raise UpdateRefused(f"release {v} failed before ({state['failed'][v]}); not retried")
        if state["committed"] == v:
            raise UpdateRefused(f"release {v} is already installed")
        if state["highest"] and parse_version(v) <= parse_version(state["highest"]):
            raise UpdateRefused(f"downgrade refused: bundle {v} is not newer than {state['highest']}")

    def apply(self, bundle_path: str | Path) -> Outcome:
        """Install a bundle file (from the fleet repository or a USB stick) end to end."""
        bundle_path = Path(bundle_path)
        keys, threshold = self._trust()
        manifest = bundle_mod.read_verified_manifest(bundle_path, keys, threshold)
        _checkpoint("verified")
        state = self.load_state()
        pending = state.get("pending") or {}
        if state["phase"] == STAGED and pending.get("version") != manifest.version:
            # A different release waits (deferred); the newer one replaces it.
            self._remove_release(pending.get("version"), state)
            state.update(phase=IDLE, pending=None)
            self._save(state)
        self.check_acceptable(manifest, state)
        v = manifest.version
        if state["phase"] != STAGED:
            state.update(phase=STAGING, pending={"version": v, "since": time.time(), "attempts": 0})
            self._save(state)
            _checkpoint("staging")
            self.releases.mkdir(parents=True, exist_ok=True)
            staging = self.releases / f".staging-{v}"
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(self.releases / v, ignore_errors=True)
            first = []

            def progress(_rel: str) -> None:
                if not first:
                    first.append(1)
                    _checkpoint("unpacking")

            try:
                bundle_mod.unpack(bundle_path, staging, keys, threshold, progress)
            except KioskError as exc:
                state.update(phase=IDLE, pending=None)
                self._last(state, "refused", v, str(exc))
                self._save(state)
                raise
            os.replace(staging, self.releases / v)
            fsync_dir(self.releases)
            state["phase"] = STAGED
            self._save(state)
            _checkpoint("staged")
        return self.activate_staged()

    def activate_staged(self) -> Outcome:
        """Switch to the staged release unless a session is running; then health-check it."""
        state = self.load_state()
        if state["phase"] != STAGED:
            raise KioskError("no staged release to activate")
        pending = state["pending"]
        v = pending["version"]
        with exclusive_update(self.session_dir) as free:
            if not free:
                waited = time.time() - pending["since"]
                if waited > self.policy.give_up_after:
                    self._remove_release(v, state)
                    state.update(phase=IDLE, pending=None)
                    out = self._last(
                        state,
                        "gave-up",
                        v,
                        f"gave up on {v} after {waited:.0f} s: a citizen's session was running at every try",
                    )
                    self._save(state)
                    return out
                out = self._last(
                    state, "deferred", v, f"update to {v} deferred: a citizen's session is running"
                )
                self._save(state)
                return out
            pending["attempts"] = pending.get("attempts", 0) + 1
            state["phase"] = SWITCHING
            self._save(state)
            _checkpoint("switching")
            self._switch(v)
            _checkpoint("switched")
            state["phase"] = VERIFYING
            self._save(state)
            _checkpoint("verifying")
            self.service.restart()
        _checkpoint("restarted")
        reason = self.service.wait_ready(self.policy.ready_timeout)
        if reason is None:
            _checkpoint("ready")
            reason = self.service.wait_stable(self.policy.stable_seconds)
        if reason is None:
            return self._commit(state, v)
        return self._rollback(state, v, reason)

    def _commit(self, state: dict[str, Any], v: str) -> Outcome:
        old_previous = state["previous"]
        state["previous"] = state["committed"]
        state["committed"] = v
        if not state["highest"] or parse_version(v) > parse_version(state["highest"]):
            state["highest"] = v
        state.update(phase=IDLE, pending=None)
        out = self._last(state, "committed", v, f"release {v} is running and committed")
        self._save(state)
        _checkpoint("committed")
        self._remove_release(old_previous, state)  # keep two: the committed one and one to go back to
        return out

    def _rollback(self, state: dict[str, Any], v: str, reason: str) -> Outcome:
        state["failed"][v] = reason
        state["phase"] = ROLLING_BACK
        self._save(state)
        _checkpoint("rolling-back")
        self._switch(state["committed"])
        again = None
        if state["committed"]:
            self.service.restart()
            again = self.service.wait_ready(self.policy.ready_timeout)
        state.update(phase=IDLE, pending=None)
        self._remove_release(v, state)
        msg = f"release {v} rolled back: {reason}"
        if again:
            msg += f"; and {state['committed']} did not report READY either: {again}"
        out = self._last(state, "rolled-back", v, msg)
        self._save(state)
        return out

    def resume(self) -> Outcome | None:
        """The timer's first job: a deferred, staged release is tried again."""
        if self.load_state()["phase"] == STAGED:
            return self.activate_staged()
        return None

    def rollback(self) -> Outcome:
        """Go back to the previous committed release by hand; the abandoned one is not retried."""
        state = self.load_state()
        prev, cur = state["previous"], state["committed"]
        if state["phase"] != IDLE:
            raise KioskError(f"an update is in progress ({state['phase']}); run status first")
        if not prev or not (self.releases / prev).is_dir():
            raise KioskError("no previous release to roll back to")
        with exclusive_update(self.session_dir) as free:
            if not free:
                return Outcome("deferred", prev, "rollback deferred: a citizen's session is running")
            state["failed"][cur] = "rolled back by hand"
            state.update(committed=prev, previous=None)
            self._save(state)
            self._switch(prev)
            self.service.restart()
        reason = self.service.wait_ready(self.policy.ready_timeout)
        out = self._last(
            state, "rolled-back", cur, f"back on {prev}" + (f" (but: {reason})" if reason else "")
        )
        self._remove_release(cur, state)
        self._save(state)
        return out

    def status(self) -> dict[str, Any]:
        state = self.load_state()
        return {
            "root": str(self.root),
            "current": self.current_version(),
            "committed": state["committed"],
            "previous": state["previous"],
            "highest": state["highest"],
            "phase": state["phase"],
            "pending": (state.get("pending") or {}).get("version"),
            "failed": state["failed"],
            "last": state["last"],
        }


def describe(outcome: Outcome) -> str:
    return f"{outcome.status}: {outcome.message}"


__all__ = ["BundleError", "Outcome", "Policy", "Updater", "UpdateRefused", "EX_TEMPFAIL"]
