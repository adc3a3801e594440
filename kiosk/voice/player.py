"""Playing a WAV: through ALSA with ``aplay`` (alsa-utils, on Raspberry Pi OS) on the terminal, or
nowhere (the null player) in simulation. ``play`` blocks its caller (the voice's worker thread,
never the session's) until the sound ends or ``stop`` cuts it; volume is applied to the samples."""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import threading
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

log = logging.getLogger("kiosk.voice")


def scaled_wav(path: Path, volume: float) -> bytes:
    """The WAV's bytes with its 16-bit samples scaled by ``volume`` (0..1)."""
    with wave.open(str(path), "rb") as w:
        params = w.getparams()
        frames = w.readframes(w.getnframes())
    if params.sampwidth != 2:
        raise ValueError(f"{path.name}: expected 16-bit samples")
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float32) * max(0.0, min(1.0, volume))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setparams(params)
        w.writeframes(np.clip(samples, -32768, 32767).astype("<i2").tobytes())
    return buf.getvalue()


class Player(Protocol):
    name: str

    # ``wanted`` is asked at the last moment before the sound starts (under the lock ``stop`` takes),
    # so a sound cut while it was being prepared never starts
    def play(self, wav: Path, volume: float, wanted: Callable[[], bool] | None = None) -> None: ...

    def stop(self) -> None: ...


class NullPlayer:
    """Simulation: nothing is played (the demo records what would have been)."""

    name = "null"

    def play(self, wav: Path, volume: float, wanted: Callable[[], bool] | None = None) -> None:
        log.debug("voice (not played): %s", wav.name)

    def stop(self) -> None:
        pass


class AplayPlayer:
    """ALSA through ``aplay -q [-D DEVICE] -``: no Python audio dependency on the Pi."""

    name = "aplay"

    def __init__(self, exe: str, device: str = ""):
        self.exe, self.device = exe, device
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._failed = False

    def play(self, wav: Path, volume: float, wanted: Callable[[], bool] | None = None) -> None:
        data = scaled_wav(wav, volume)
        cmd = [self.exe, "-q", *(["-D", self.device] if self.device else []), "-"]
        with self._lock:
            if wanted is not None and not wanted():
                return
            try:
                self._proc = subprocess.Popen(
                    cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
                )
            except OSError as exc:
                self._once(f"voice: cannot run {self.exe}: {exc.strerror or exc}")
                return
            proc = self._proc
        try:
            _, err = proc.communicate(data, timeout=60)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
            err = b""
        if proc.returncode not in (0, -9, -15) and err:
            self._once(f"voice: aplay failed: {err.decode(errors='replace').strip().splitlines()[0]}")

    def _once(self, message: str) -> None:
        if not self._failed:
            log.warning("%s", message)
        self._failed = True

    def stop(self) -> None:
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()


def open_player(sim: bool, device: str = "") -> Player:
    """The null player in simulation; aplay on a terminal (the null player, said once, without it)."""
    if sim:
        return NullPlayer()
    exe = shutil.which("aplay")
    if exe is None:
        log.warning("voice: aplay not found (Debian: apt-get install alsa-utils); nothing is played")
        return NullPlayer()
    return AplayPlayer(exe, device)
