"""One typed configuration, validated at load; every error names the key.

Sources, later wins: built-in defaults, the root-owned TOML file (``--config`` / ``$KIOSK_CONFIG`` /
``/etc/kiosk/kiosk.toml`` when it exists), the technician's file beside it (``local/kiosk.toml``,
only the keys of ``CONSOLE_KEYS``), then ``--state-dir`` / ``$KIOSK_STATE_DIR``.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, get_type_hints

from kiosk.errors import KioskError

SYSTEM_CONFIG = Path("/etc/kiosk/kiosk.toml")
SYSTEM_STATE = Path("/var/lib/kiosk")

log = logging.getLogger("kiosk.config")


class ConfigError(KioskError):
    exit_code = 2


@dataclass(frozen=True)
class VisionConfig:
    num_threads: int = 2  # TFLite interpreter threads
    min_detection_score: float = 0.5
    min_presence: float = 0.5  # below this the tracked face is lost and the detector runs again
    analysis_max_side: int = 1280  # larger images are analysed on a downscaled copy
    iris: bool = True  # run the iris model for gaze
    # tracked video: frames from one eye read to the next (eyes take turns, so each eye every 2x this);
    # 2 reads each eye at 7.5 Hz at 30 fps, 4-5 times within the 0.6 s a closed eye must last for the
    # prompt (guidance.toml), at about half the iris model's CPU of 1; stills always read both eyes
    eye_read_every: int = 2


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
    # "Need more time?" this long before choose/consent/requirements/review or guidance time out (0: never)
    warn_s: float = 15.0
    ended_notice_s: float = 10.0  # after a timeout the idle screen says why the session ended this long
    stuck_hint_s: float = 20.0  # guidance showing one prompt this long adds a specific hint and "call staff"
    scan_hint_s: float = 5.0  # a returning citizen's slip not read this long: "hold it flat, about 20 cm"
    scan_timeout_s: float = 30.0  # not read this long: the scan ends with that hint (then idle)
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
    platform_url: str = "http://127.0.0.1:8765"  # https:// (plain http:// only to a loopback address)
    platform_ca: str = ""  # CA bundle the platform's certificate is checked against; "": the system's
    platform_cert: str = ""  # this terminal's client certificate (mutual TLS; hardware/provision.sh)
    platform_key: str = ""  # its private key: made on the terminal, readable only by the service
    platform_timeout_s: float = 5.0
    platform_retries: int = 3
    printer: str = "virtual"  # virtual | file | usb | serial | network
    printer_target: str = ""  # file path, usb VID:PID (hex), serial DEV[:BAUD], network HOST[:PORT]
    paper_mm: int = 58  # 58 or 80
    # photos are deleted this long after nothing needs them (the slip handed over; the upload settled),
    # at most kiosk.store.STANDALONE_MAX_DAYS on a terminal that uploads nothing
    retention_days: float = 30.0
    max_retakes: int = 2  # free retakes per number after a rejected review (issue 15), audited in the store
    layouts_file: str = ""  # a province's cities and slips (shaped like receipt/layouts.toml); "": Guangdong
    home_city: str = ""  # the city offered first (id or name as typed); "": the layouts file's home


@dataclass(frozen=True)
class VoiceConfig:
    """Spoken prompts (kiosk.voice, what is said: kiosk/voice/voice.toml): on/off, loudness, languages."""

    enabled: bool = True
    volume: int = 80  # percent of the rendered level (0: silent)
    languages: tuple[str, ...] = ("zh", "en")  # spoken when shown; another screen language speaks the first
    device: str = ""  # ALSA device for aplay (-D), "": the system default


@dataclass(frozen=True)
class MonitorConfig:
    """Fleet monitoring over MQTT (kiosk.monitor): where this terminal reports its state; read-only."""

    broker: str = ""  # mqtts://host:port (plain mqtt:// only to a loopback address); "": monitoring off
    hall: str = ""  # the hall's id in the topics kiosk/<hall>/<station>/...: letters, digits, _ and -
    keepalive_s: int = 30  # the broker reports the terminal offline after 1.5 x this without a word
    username: str = ""  # with password_file; by convention <hall>/<station> (the ACL's %u)
    password_file: str = ""  # one line; not readable by other users
    client_cert: str = ""  # or a per-terminal TLS client certificate (CN <hall>/<station>) ...
    client_key: str = ""  # ... and its key, not readable by other users
    ca_file: str = ""  # CA bundle the broker's certificate is checked against; "": the system's
    state_every_s: float = 60.0  # the state is republished at least this often, changed or not
    poll_s: float = 5.0  # how often the state is read for changes
    queue_max: int = 256  # messages held while the broker is away (the oldest dropped, counted)


@dataclass(frozen=True)
class ServiceConfig:
    """The long-running service itself (`kiosk run`, kiosk.memory's guard)."""

    # RSS at idle above this: exit with the restart status for systemd, between citizens (0: never)
    memory_ceiling_mb: float = 400.0


@dataclass(frozen=True)
class Config:
    state_dir: Path = field(default_factory=lambda: default_state_dir())
    vision: VisionConfig = field(default_factory=VisionConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    session: SessionConfig = field(default_factory=SessionConfig)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    fleet: FleetConfig = field(default_factory=FleetConfig)
    receipt: ReceiptConfig = field(default_factory=ReceiptConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    voice: VoiceConfig = field(default_factory=VoiceConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    # where it came from; not a setting (``config get`` does not list it)
    source: ConfigSource = field(default_factory=lambda: ConfigSource(), compare=False, repr=False)


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
    elif typ == tuple[str, ...]:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"config key {key}: expected a list of texts, got {value!r}")
    else:
        return value
    raise ConfigError(f"config key {key}: expected {typ.__name__}, got {value!r}")


def _merge(obj: Any, data: dict, prefix: str = "") -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"config key {prefix.rstrip('.') or '<root>'}: expected a table")
    hints = get_type_hints(type(obj))
    known = {f.name for f in fields(obj) if f.compare}  # not ``source``: it is no setting
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


# each eye is read every 2 x eye_read_every frames: at 4 and 30 fps that is 2-3 readings per eye in
# the 0.6 s a closed eye must last before guidance asks to open it; more would act on stale lids
EYE_READ_EVERY_MAX = 4


def _validate(obj: Any, prefix: str) -> None:
    if isinstance(obj, VisionConfig):
        if not 1 <= obj.num_threads <= 16:
            raise ConfigError(f"config key {prefix}num_threads: must be between 1 and 16")
        for name in ("min_detection_score", "min_presence"):
            if not 0.0 < getattr(obj, name) < 1.0:
                raise ConfigError(f"config key {prefix}{name}: must be between 0 and 1")
        if obj.analysis_max_side < 256:
            raise ConfigError(f"config key {prefix}analysis_max_side: must be at least 256")
        if not 1 <= obj.eye_read_every <= EYE_READ_EVERY_MAX:
            raise ConfigError(
                f"config key {prefix}eye_read_every: must be between 1 and {EYE_READ_EVERY_MAX} frames "
                "(more leaves too few eye readings in the 0.6 s before the open-eyes prompt)"
            )
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
        for name in ("warn_s", "ended_notice_s", "stuck_hint_s"):
            if not 0.0 <= getattr(obj, name) <= 3600.0:
                raise ConfigError(f"config key {prefix}{name}: must be between 0 and 3600 seconds")
        if not 0 <= obj.max_retakes <= 10:
            raise ConfigError(f"config key {prefix}max_retakes: must be between 0 and 10")
        if not 0 <= obj.ui_port <= 65535:
            raise ConfigError(f"config key {prefix}ui_port: must be between 0 and 65535")
        problem = _check_loopback(obj.ui_host)
        if problem:
            raise ConfigError(f"config key {prefix}ui_host: {problem}")

    if isinstance(obj, ReceiptConfig):
        _validate_receipt(obj, prefix)
    if isinstance(obj, VoiceConfig):
        if not 0 <= obj.volume <= 100:
            raise ConfigError(f"config key {prefix}volume: must be between 0 and 100 (percent)")
        if not set(obj.languages) <= {"zh", "en"} or len(set(obj.languages)) != len(obj.languages):
            raise ConfigError(f"config key {prefix}languages: a list of distinct zh, en")
    if isinstance(obj, ConsoleConfig):
        _validate_console(obj, prefix)
    if isinstance(obj, ServiceConfig) and obj.memory_ceiling_mb < 0:
        raise ConfigError(f"config key {prefix}memory_ceiling_mb: must be 0 (no ceiling) or more")
    if isinstance(obj, MonitorConfig):
        problem = _check_monitor(obj)
        if problem:
            raise ConfigError(f"config key {prefix}{problem}")
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
    problem = _check_platform_tls(obj)
    if problem:
        raise ConfigError(f"config key {prefix}{problem}")
    if not 0.0 < obj.platform_timeout_s <= 120.0:
        raise ConfigError(f"config key {prefix}platform_timeout_s: must be between 0 and 120 seconds")
    if not 0 <= obj.platform_retries <= 10:
        raise ConfigError(f"config key {prefix}platform_retries: must be between 0 and 10")
    if obj.printer not in ("virtual", "file", "usb", "serial", "network"):
        raise ConfigError(f"config key {prefix}printer: expected virtual, file, usb, serial or network")
    problem = _check_printer_target(obj.printer, obj.printer_target)
    if problem:
        raise ConfigError(f"config key {prefix}printer_target: {problem}")
    if obj.paper_mm not in (58, 80):
        raise ConfigError(f"config key {prefix}paper_mm: expected 58 or 80")
    if not 0.0 <= obj.retention_days <= 3650.0:
        raise ConfigError(f"config key {prefix}retention_days: must be between 0 and 3650")
    if not 0 <= obj.max_retakes <= 10:
        raise ConfigError(f"config key {prefix}max_retakes: must be between 0 and 10")


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


# --- where the configuration comes from --------------------------------------------------------------
#
# Two files. The base file (/etc/kiosk/kiosk.toml, root-owned 0644) holds everything, including what
# root acts on: commands it runs, the unit it restarts, the update source and the release root. The
# local file (/etc/kiosk/local/kiosk.toml, in a directory the service user may write) holds only
# the technician's changes made with `config set`: data from CONSOLE_KEYS, never anything executed.
# The service keeps a copy of the local file it last started with (last-good.toml beside it); a local
# file that fails validation or the start checks is replaced by that copy (or dropped), never fatal.

LOCAL_DIR = "local"
LAST_GOOD = "last-good.toml"

# What `config set` may change (the console and the service run as the unprivileged kiosk user).
# Left out on purpose: commands (console.restart_command, fleet.*), the release root and update
# source (fleet.*), where citizens' photos are sent (receipt.platform_url), the number authority
# and station id, the console's own line and login limits, and pin_hash (the `pin` command only).
_CONSOLE_SETTABLE = {
    "vision": "num_threads min_detection_score min_presence analysis_max_side iris eye_read_every",
    "hardware": "camera camera_device camera_file sim_face frame_width frame_height still_width still_height"
    " fps led_frequency button_debounce_ms",
    "session": "steady_s countdown_s max_retakes idle_timeout_s guidance_timeout_s done_s failsafe_s"
    " default_profile ui_host ui_port",
    "receipt": "upload platform_timeout_s platform_retries printer printer_target paper_mm max_retakes",
    "console": "idle_timeout_s selftest_min_led_gain",
    "voice": "enabled volume",
}
CONSOLE_KEYS = frozenset(f"{sec}.{k}" for sec, ks in _CONSOLE_SETTABLE.items() for k in ks.split())
SECRET_KEYS = frozenset({"console.pin_hash"})  # written by the `pin` command only, never shown
# Root acts on these: from a file that a non-root user can change, they are refused when running as root.
EXECUTED_KEYS = frozenset(
    {"console.restart_command", "fleet.restart_command", "fleet.unit", "fleet.root", "fleet.repository_url"}
)


@dataclass(frozen=True)
class ConfigSource:
    """Which files made a configuration, and why the technician's changes were not used (if not)."""

    base: Path | None = None
    local: Path | None = None  # where `config set` writes; None without a base file
    local_text: str | None = None  # the local file as it was applied (None: none applied)
    fallback: str = ""  # why the local file was not used as it is; empty when it was

    @property
    def last_good(self) -> Path | None:
        return self.local.with_name(LAST_GOOD) if self.local is not None else None


def local_path(base: Path) -> Path:
    """The technician's file that goes with a base file: ``<dir>/local/<name>``."""
    return base.parent / LOCAL_DIR / base.name


def _check_loopback(host: str) -> str | None:
    import ipaddress

    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return f"the UI listens on loopback only (127.0.0.1, ::1 or localhost), not {host!r}"


def _check_platform_tls(rc: ReceiptConfig) -> str | None:
    """Citizens' photos go to the platform over TLS only; "<key>: why" for the first problem."""
    import urllib.parse

    host = urllib.parse.urlsplit(rc.platform_url).hostname or ""
    if rc.platform_url.startswith("http://") and _check_loopback(host) is not None:
        return f"platform_url: plain http:// only to a loopback address; use https:// for {host!r}"
    if bool(rc.platform_cert) != bool(rc.platform_key):
        return "platform_key: platform_cert and platform_key go together (the terminal's certificate and key)"
    for name in ("platform_ca", "platform_cert", "platform_key"):
        path = getattr(rc, name)
        if not path:
            continue
        try:
            st = os.stat(path)
        except OSError as exc:
            return f"{name}: {exc.strerror or exc}: {path}"
        if name == "platform_key" and st.st_mode & 0o077:
            return f"{name}: {path} is readable by others (mode {st.st_mode & 0o777:04o}); make it 0600"
    return None


def _check_monitor(mc: MonitorConfig) -> str | None:
    """"<key>: why" for the first problem of the [monitor] section (monitoring off: only the numbers)."""
    import urllib.parse

    limits = (("keepalive_s", 1, 3600), ("state_every_s", 1, 60), ("poll_s", 0.1, 60),
              ("queue_max", 1, 100000))
    for name, lo, hi in limits:
        if not lo <= getattr(mc, name) <= hi:
            return f"{name}: must be between {lo} and {hi}"
    if not mc.broker:
        return None
    url = urllib.parse.urlsplit(mc.broker)
    try:
        port = url.port
    except ValueError:
        port = -1
    if url.scheme not in ("mqtt", "mqtts") or not url.hostname or port == -1 or url.path not in ("", "/"):
        return f"broker: expected mqtt://HOST:PORT or mqtts://HOST:PORT, not {mc.broker!r}"
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", mc.hall):
        return f"hall: expected 1 to 64 letters, digits, _ or - (a topic level), not {mc.hall!r}"
    if url.scheme == "mqtt" and _check_loopback(url.hostname) is not None:
        return f"broker: plain mqtt:// only to a loopback address; use mqtts:// for {url.hostname!r}"
    if bool(mc.username) != bool(mc.password_file):
        return "password_file: username and password_file go together"
    if bool(mc.client_cert) != bool(mc.client_key):
        return "client_key: client_cert and client_key go together"
    if (mc.client_cert or mc.ca_file) and url.scheme != "mqtts":
        return "broker: a client certificate or CA file needs mqtts://"
    for name in ("ca_file", "client_cert", "client_key", "password_file"):
        path = getattr(mc, name)
        if not path:
            continue
        try:
            st = os.stat(path)
        except OSError as exc:
            return f"{name}: {exc.strerror or exc}: {path}"
        if name in ("client_key", "password_file") and st.st_mode & 0o007:
            mode = st.st_mode & 0o777
            return f"{name}: {path} is readable by other users (mode {mode:04o}); make it 0640 or 0600"
    return None


def _check_printer_target(kind: str, target: str) -> str | None:
    """The target as the printer driver will read it (kiosk.hw.printer.open_printer)."""
    if kind == "virtual":
        return None
    if kind == "file":
        return None if target.startswith("/") else "printer file needs an absolute path"
    if kind == "usb":
        if re.fullmatch(r"[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}", target):
            return None
        return f"usb printer needs VID:PID in hex (e.g. 0416:5011), not {target!r}"
    if kind == "serial":
        if re.fullmatch(r"/dev/[A-Za-z0-9._/-]+(:\d{3,7})?", target):
            return None
        return f"serial printer needs /dev/DEVICE[:BAUD], not {target!r}"
    host, _, port = target.rpartition(":") if ":" in target else (target, "", "9100")
    if re.fullmatch(r"[A-Za-z0-9.-]{1,253}", host) and port.isdigit() and 1 <= int(port) <= 65535:
        return None
    return f"network printer needs HOST[:PORT], not {target!r}"


# Checks against the machine (files present): a configuration that fails them cannot start.
START_CHECKS: dict[str, Callable[[Config], str | None]] = {
    "hardware.sim_face": lambda c: None
    if not c.hardware.sim_face or Path(c.hardware.sim_face).is_file()
    else f"no such file: {c.hardware.sim_face}",
    "hardware.camera_file": lambda c: None
    if c.hardware.camera != "file" or Path(c.hardware.camera_file).exists()
    else f"no such file or directory: {c.hardware.camera_file}",
}


# Stricter than the loader, for what the technician's file sets (root's base file may do more):
# key -> (the keys that bring the check on, the check).
LOCAL_CHECKS: dict[str, tuple[frozenset[str], Callable[[Config], str | None]]] = {
    "receipt.printer_target": (
        frozenset({"receipt.printer", "receipt.printer_target"}),
        lambda c: None
        if c.receipt.printer != "file" or c.receipt.printer_target.startswith("/dev/")
        else "a file printer set from the console must be a device under /dev/ (not any file)",
    ),
}


def start_problem(cfg: Config) -> str | None:
    """The first reason this configuration cannot start on this machine, naming the key; None if none."""
    for key, check in START_CHECKS.items():
        problem = check(cfg)
        if problem:
            return f"config key {key}: {problem}"
    return None


def _read_toml(p: Path) -> tuple[dict, str]:
    try:
        text = p.read_text(encoding="utf-8")
        return tomllib.loads(text), text
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {p}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None


def _dotted(data: dict, prefix: str = "") -> list[str]:
    out: list[str] = []
    for k, v in data.items():
        out += _dotted(v, f"{prefix}{k}.") if isinstance(v, dict) else [prefix + k]
    return out


def check_local_keys(data: dict, where: Path | str) -> None:
    """The technician's file may hold only CONSOLE_KEYS (and the PIN hash)."""
    for key in _dotted(data):
        if key not in CONSOLE_KEYS and key not in SECRET_KEYS:
            raise ConfigError(
                f"config key {key}: not settable in {where} (root-only settings live in the root-owned file)"
            )


def _check_root_owned(p: Path, data: dict) -> None:
    """Running as root, commands and update sources come only from a file no one else can change."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return
    executed = sorted(EXECUTED_KEYS & set(_dotted(data)))
    if not executed:
        return
    for what in (p, p.parent):
        st = what.stat()
        if st.st_uid != 0 or st.st_mode & 0o022:
            raise ConfigError(
                f"config key {executed[0]}: {what} can be changed by a user other than root; "
                "refusing to act on it as root (make it root:root 0644 in a root:root 0755 directory)"
            )


def apply_local(base: Config, text: str, where: Path) -> Config:
    """The technician's file applied to the base: allowed keys only, validated, start checks passed."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {where} is not valid TOML: {exc}") from None
    check_local_keys(data, where)
    cfg = _merge(base, data)
    problem = start_problem(cfg)
    if problem:
        raise ConfigError(problem)
    for key, (triggers, check) in LOCAL_CHECKS.items():
        problem = check(cfg) if triggers & set(_dotted(data)) else None
        if problem:
            raise ConfigError(f"config key {key}: {problem}")
    return cfg


def load_base(p: Path) -> Config:
    """Defaults and the base file alone (what the technician's file is applied to)."""
    data, _ = _read_toml(p)
    _check_root_owned(p, data)
    return _merge(Config(), data)


def config_path(path: str | Path | None = None) -> Path | None:
    """The base file in use: explicit, $KIOSK_CONFIG, or /etc/kiosk/kiosk.toml when it exists."""
    path = path or os.environ.get("KIOSK_CONFIG")
    if path is None and SYSTEM_CONFIG.exists():
        path = SYSTEM_CONFIG
    return Path(path) if path is not None else None


def load_config(path: str | Path | None = None, state_dir: str | Path | None = None) -> Config:
    """Load and validate the configuration; a missing explicit file is an error, a missing default is not.

    The base file must be valid (root wrote it). The technician's local file is applied on top when
    it passes the same validation and the start checks; otherwise its last copy that started is
    used, or none, and ``cfg.source.fallback`` says why (logged; the service audits it)."""
    p = config_path(path)
    cfg = Config()
    source = ConfigSource()
    if p is not None:
        cfg = load_base(p)
        source = ConfigSource(base=p, local=local_path(p))
        cfg, source = _with_local(cfg, source)
    state_dir = state_dir or os.environ.get("KIOSK_STATE_DIR")
    if state_dir:
        cfg = replace(cfg, state_dir=Path(state_dir))
    return replace(cfg, source=source)


def _with_local(base: Config, source: ConfigSource) -> tuple[Config, ConfigSource]:
    local = source.local
    assert local is not None
    try:
        text = local.read_text(encoding="utf-8")
    except FileNotFoundError:
        return base, source
    except (OSError, UnicodeDecodeError) as exc:
        problem = f"cannot read {local}: {exc}"
    else:
        try:
            return apply_local(base, text, local), replace(source, local_text=text)
        except ConfigError as exc:
            problem = str(exc)
        if problem == start_problem(base):
            # the base file alone has the same problem: not the technician's doing, keep the changes
            data = tomllib.loads(text)
            check_local_keys(data, local)
            return _merge(base, data), replace(source, local_text=text)
    good = local.with_name(LAST_GOOD)
    try:
        good_text = good.read_text(encoding="utf-8")
        cfg = apply_local(base, good_text, good)
    except (OSError, UnicodeDecodeError, ConfigError):
        log.warning("%s not used (%s); no configuration that started is kept: base file only", local, problem)
        return base, replace(source, fallback=f"{problem}; using the base file only")
    log.warning("%s not used (%s); using the last configuration that started", local, problem)
    return cfg, replace(source, local_text=good_text, fallback=f"{problem}; using {good.name}")


def remember_started(cfg: Config) -> None:
    """Called by the service once it is READY: the local file it started with is the last good one."""
    src = cfg.source
    good = src.last_good
    if good is None or src.fallback:
        return
    from kiosk.durable import write_atomic

    try:
        if src.local_text is None:
            good.unlink(missing_ok=True)
        elif not good.exists() or good.read_text(encoding="utf-8") != src.local_text:
            write_atomic(good, src.local_text.encode("utf-8"), mode=0o640)
    except OSError as exc:
        log.warning("cannot keep the configuration that started in %s: %s", good, exc.strerror or exc)
