"""One typed configuration, validated at load; every error names the key.

Sources, later wins: built-in defaults, the TOML file (``--config`` / ``$KIOSK_CONFIG`` /
``/etc/kiosk/kiosk.toml`` when it exists), then ``--state-dir`` / ``$KIOSK_STATE_DIR``.
"""

from __future__ import annotations

import os
import re
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
class HardwareConfig:
    """Camera backend and GPIO pins (BCM numbers); pins 12/13/18 are the Pi's hardware-PWM pins."""

    camera: str = "auto"  # auto (real device if present, else simulation) | sim | picamera2 | v4l2 | file
    camera_device: str = "/dev/video0"  # V4L2 device of a USB camera
    camera_file: str = ""  # file backend: an image, a directory of images or a video
    sim_face: str = ""  # face image of the simulated camera; empty: the bundled sample
    frame_width: int = 640  # analysis/preview stream (Picamera2 lores)
    frame_height: int = 480
    still_width: int = 1920  # full-resolution still (Picamera2 main stream)
    still_height: int = 1440
    fps: int = 30
    led_left_pin: int = 12
    led_right_pin: int = 13
    led_fill_pin: int = 18
    led_frequency: int = 800  # PWM Hz; above what a camera exposure shows as flicker bands at 30 fps
    button_accept_pin: int = 5
    button_retake_pin: int = 6
    button_cancel_pin: int = 26
    button_debounce_ms: int = 60  # our own debounce: gpiozero's bounce_time can drop events


@dataclass(frozen=True)
class SessionConfig:
    """Timing of one citizen's session and where the local UI listens."""

    steady_s: float = 1.0  # every check must hold this long before the countdown
    countdown_s: float = 3.0
    max_retakes: int = 2
    idle_timeout_s: float = 60.0  # choose / consent / review: no touch for this long returns to idle
    guidance_timeout_s: float = 90.0  # live guidance + countdown without a photo
    done_s: float = 8.0  # the result screen
    failsafe_s: float = 3.0  # the apology screen
    default_profile: str = "id_card"
    ui_host: str = "127.0.0.1"
    ui_port: int = 8780


@dataclass(frozen=True)
class ConsoleConfig:
    """The serial maintenance console: line settings (8N1 fixed), technician login and its limits."""

    port: str = "/dev/serial0"  # the Pi's UART; a USB-serial adapter is /dev/ttyUSB0
    baud: int = 115200
    pin_hash: str = ""  # scrypt$N$r$p$salt$hash from `kiosk console --hash-pin`; empty: login refused
    idle_timeout_s: float = 600.0  # a logged-in console with no input for this long logs out
    max_attempts: int = 5  # wrong PINs before the lockout
    delay_base_s: float = 1.0  # wait after the n-th wrong PIN: base * 2^(n-1), capped at delay_max_s
    delay_max_s: float = 30.0
    lockout_s: float = 900.0  # survives a console restart (kept in the state dir)
    restart_command: str = ""  # run by `service restart` only when the service does not answer
    selftest_min_led_gain: float = 3.0  # grey levels an LED alone must add to a half of the frame


@dataclass(frozen=True)
class FleetConfig:
    """Fleet updates (kiosk.fleet): where releases live, the repository, and the health-check timing."""

    root: Path = Path("/opt/kiosk")  # releases/, current, state/ (`kiosk update --root` overrides)
    repository_url: str = ""  # TUF repository (https:// or file:// for a USB stick); empty: none
    unit: str = "kiosk.service"  # restarted with systemctl unless restart_command is set
    restart_command: str = ""  # instead of systemctl: run this as the service ({root} substituted)
    ready_timeout_s: float = 90.0  # restart -> READY=1
    stable_s: float = 60.0  # READY -> commit with no crash or restart
    give_up_after_s: float = 604800.0  # deferred by sessions this long: give up with a clear status
    max_attempts: int = 2  # health checks cut short by power cuts before the release counts as failed


@dataclass(frozen=True)
class ReceiptConfig:
    """Image numbers, the platform, the printer and photo retention (kiosk.receipt, kiosk.store)."""

    authority: str = "local"  # local (numbers made on the terminal) | platform (issued on upload)
    station: str = "001"  # 3-digit station id, part of every local number
    timezone: str = "Asia/Shanghai"  # dates on numbers and slips
    upload: bool = False  # local authority: also upload photos to the platform (outbox)
    platform_url: str = "http://127.0.0.1:8765"
    platform_timeout_s: float = 5.0
    platform_retries: int = 3
    printer: str = "virtual"  # virtual | file | usb | serial | network
    printer_target: str = ""  # file path, usb VID:PID (hex), serial DEV[:BAUD], network HOST[:PORT]
    paper_mm: int = 58  # 58 or 80
    retention_days: float = 30.0  # photos are deleted this long after the platform confirmed the upload


@dataclass(frozen=True)
class Config:
    state_dir: Path = field(default_factory=lambda: default_state_dir())
    vision: VisionConfig = field(default_factory=VisionConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    session: SessionConfig = field(default_factory=SessionConfig)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    fleet: FleetConfig = field(default_factory=FleetConfig)
    receipt: ReceiptConfig = field(default_factory=ReceiptConfig)


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
    if isinstance(obj, HardwareConfig):
        if obj.camera not in ("auto", "sim", "picamera2", "v4l2", "file"):
            raise ConfigError(f"config key {prefix}camera: expected auto, sim, picamera2, v4l2 or file")
        if obj.camera == "file" and not obj.camera_file:
            raise ConfigError(f"config key {prefix}camera_file: needed when camera = \"file\"")
        for name in ("frame_width", "frame_height", "still_width", "still_height"):
            if not 64 <= getattr(obj, name) <= 10000:
                raise ConfigError(f"config key {prefix}{name}: must be between 64 and 10000")
        if obj.still_width < obj.frame_width or obj.still_height < obj.frame_height:
            raise ConfigError(f"config key {prefix}still_width: the still must not be smaller than the frame")
        if not 1 <= obj.fps <= 120:
            raise ConfigError(f"config key {prefix}fps: must be between 1 and 120")
        pins = ("led_left_pin", "led_right_pin", "led_fill_pin", "button_accept_pin", "button_retake_pin",
                "button_cancel_pin")
        seen: dict[int, str] = {}
        for name in pins:
            pin = getattr(obj, name)
            if not 0 <= pin <= 27:
                raise ConfigError(f"config key {prefix}{name}: BCM pin must be between 0 and 27")
            if pin in seen:
                raise ConfigError(f"config key {prefix}{name}: pin {pin} is already used by {seen[pin]}")
            seen[pin] = name
        if not 50 <= obj.led_frequency <= 20000:
            raise ConfigError(f"config key {prefix}led_frequency: must be between 50 and 20000 Hz")
        if not 0 <= obj.button_debounce_ms <= 1000:
            raise ConfigError(f"config key {prefix}button_debounce_ms: must be between 0 and 1000")
    if isinstance(obj, SessionConfig):
        for name in ("steady_s", "countdown_s"):
            if not 0.0 <= getattr(obj, name) <= 30.0:
                raise ConfigError(f"config key {prefix}{name}: must be between 0 and 30 seconds")
        for name in ("idle_timeout_s", "guidance_timeout_s", "done_s", "failsafe_s"):
            if not 0.1 <= getattr(obj, name) <= 3600.0:
                raise ConfigError(f"config key {prefix}{name}: must be between 0.1 and 3600 seconds")
        if not 0 <= obj.max_retakes <= 10:
            raise ConfigError(f"config key {prefix}max_retakes: must be between 0 and 10")
        if not 0 <= obj.ui_port <= 65535:
            raise ConfigError(f"config key {prefix}ui_port: must be between 0 and 65535")

    if isinstance(obj, ReceiptConfig):
        _validate_receipt(obj, prefix)
    if isinstance(obj, ConsoleConfig):
        _validate_console(obj, prefix)
    if isinstance(obj, FleetConfig):
        if obj.repository_url and not obj.repository_url.startswith(("https://", "http://", "file://")):
            raise ConfigError(f"config key {prefix}repository_url: expected https://, http:// or file://")
        for name in ("ready_timeout_s", "stable_s"):
            if not 0.0 < getattr(obj, name) <= 3600.0:
                raise ConfigError(f"config key {prefix}{name}: must be between 0 and 3600 seconds")
        if not 0.0 < obj.give_up_after_s <= 90 * 86400.0:
            raise ConfigError(f"config key {prefix}give_up_after_s: must be between 0 and 90 days")
        if not 1 <= obj.max_attempts <= 10:
            raise ConfigError(f"config key {prefix}max_attempts: must be between 1 and 10")


def _validate_receipt(obj: ReceiptConfig, prefix: str) -> None:
    if obj.authority not in ("local", "platform"):
        raise ConfigError(f"config key {prefix}authority: expected local or platform")
    if not (len(obj.station) == 3 and obj.station.isdigit()):
        raise ConfigError(f"config key {prefix}station: expected 3 digits")
    try:
        import zoneinfo

        zoneinfo.ZoneInfo(obj.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"config key {prefix}timezone: unknown time zone {obj.timezone!r}") from None
    if not obj.platform_url.startswith(("http://", "https://")):
        raise ConfigError(f"config key {prefix}platform_url: expected an http:// or https:// URL")
    if not 0.0 < obj.platform_timeout_s <= 120.0:
        raise ConfigError(f"config key {prefix}platform_timeout_s: must be between 0 and 120 seconds")
    if not 0 <= obj.platform_retries <= 10:
        raise ConfigError(f"config key {prefix}platform_retries: must be between 0 and 10")
    if obj.printer not in ("virtual", "file", "usb", "serial", "network"):
        raise ConfigError(f"config key {prefix}printer: expected virtual, file, usb, serial or network")
    if obj.paper_mm not in (58, 80):
        raise ConfigError(f"config key {prefix}paper_mm: expected 58 or 80")
    if not 0.0 <= obj.retention_days <= 3650.0:
        raise ConfigError(f"config key {prefix}retention_days: must be between 0 and 3650")


_PIN_HASH = r"scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+"
_BAUDS = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)


def _validate_console(obj: ConsoleConfig, prefix: str) -> None:
    if not obj.port:
        raise ConfigError(f"config key {prefix}port: must name a serial device")
    if obj.baud not in _BAUDS:
        raise ConfigError(f"config key {prefix}baud: expected one of {', '.join(map(str, _BAUDS))}")
    if obj.pin_hash and not re.fullmatch(_PIN_HASH, obj.pin_hash):
        raise ConfigError(f"config key {prefix}pin_hash: not a hash from `kiosk console --hash-pin`")
    if not 1.0 <= obj.idle_timeout_s <= 86400.0:
        raise ConfigError(f"config key {prefix}idle_timeout_s: must be between 1 and 86400 seconds")
    if not 1 <= obj.max_attempts <= 20:
        raise ConfigError(f"config key {prefix}max_attempts: must be between 1 and 20")
    if not 0.0 <= obj.delay_base_s <= obj.delay_max_s <= 600.0:
        raise ConfigError(f"config key {prefix}delay_base_s: need 0 <= delay_base_s <= delay_max_s <= 600")
    if not 1.0 <= obj.lockout_s <= 86400.0:
        raise ConfigError(f"config key {prefix}lockout_s: must be between 1 and 86400 seconds")
    if not 0.0 <= obj.selftest_min_led_gain <= 255.0:
        raise ConfigError(f"config key {prefix}selftest_min_led_gain: must be between 0 and 255")


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
