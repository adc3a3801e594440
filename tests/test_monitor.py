"""Fleet monitoring on MQTT (kiosk.monitor) against a real Eclipse Mosquitto on a free port: a running
`kiosk run --sim` appears online with its state, a killed one goes offline through the broker's last
will, a broker that is away changes nothing for the citizen, and no message carries a number or a
photo. Home Assistant's discovery messages use Home Assistant's own configuration keys.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk.config import ConfigError, MonitorConfig, load_config
from kiosk.monitor.homeassistant import discovery
from kiosk.monitor.state import clean, events

pytestmark = pytest.mark.slow  # subprocesses or whole sessions: runs with --full

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
needs_broker = pytest.mark.skipif(not os.path.exists(MOSQUITTO), reason="mosquitto not installed (.ci/run)")
JPEG = b"\xff\xd8\xff"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    """A real broker on 127.0.0.1:<port>, from a temporary mosquitto.conf; stop and start again
    on the same port (what a broker restart looks like to a terminal)."""

    def __init__(self, directory: Path, port: int | None = None, conf: str = "allow_anonymous true\n"):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\n{conf}persistence false\n")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> Mosquitto:
        log = (self.dir / "mosquitto.log").open("ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=log, stderr=log)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return self
            assert self.proc.poll() is None, (self.dir / "mosquitto.log").read_text()
            time.sleep(0.05)
        raise AssertionError("mosquitto did not listen")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def freeze(self, frozen: bool = True) -> None:
        """SIGSTOP: connections stay open and nothing answers (a broker that hangs, or is very slow)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP if frozen else signal.SIGCONT)


@pytest.fixture
def broker(tmp_path):
    b = Mosquitto(tmp_path / "broker").start()
    yield b
    b.stop()


class Recorder:
    """A plain paho subscriber to everything: the messages as the broker delivers them."""

    def __init__(self, url: str, topic: str = "#") -> None:
        import paho.mqtt.client as mqtt

        from kiosk.monitor.client import Broker

        where = Broker.parse(url)
        self.messages: list[tuple[str, bytes, bool]] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"rec-{os.getpid()}-{id(self)}")
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, m.payload, m.retain))
        self.client.connect(where.host, where.port, keepalive=10)
        self.client.loop_start()

    def last(self, topic: str) -> bytes | None:
        for t, payload, _ in reversed(list(self.messages)):
            if t == topic:
                return payload
        return None

    def wait(self, cond, timeout: float = 15.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            value = cond()
            if value:
                return value
            time.sleep(0.02)
        return None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def monitor_config(tmp_path: Path, url: str, **extra: object) -> Path:
    lines = [f'broker = "{url}"', 'hall = "tianhe"', "keepalive_s = 2", "poll_s = 0.2"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    path = tmp_path / "kiosk.toml"
    path.write_text("[monitor]\n" + "\n".join(lines) + "\n")
    return path


# --- configuration, schema, events, discovery (no broker) ---------------------------------------


def test_monitor_configuration_errors_are_one_line_and_name_the_key(tmp_path):
    def load(**monitor: object) -> str:
        body = "\n".join(f"{k} = {json.dumps(v)}" for k, v in monitor.items())
        (tmp_path / "k.toml").write_text(f"[monitor]\n{body}\n")
        with pytest.raises(ConfigError) as exc:
            load_config(tmp_path / "k.toml", tmp_path / "state")
        assert "\n" not in str(exc.value)
        return str(exc.value)

    assert "monitor.broker: expected mqtt://" in load(broker="http://x:1", hall="h")
    assert "monitor.hall: expected" in load(broker="mqtt://127.0.0.1:1883", hall="tian he")
    assert "monitor.hall" in load(broker="mqtt://127.0.0.1:1883")
    assert "plain mqtt:// only to a loopback" in load(broker="mqtt://broker.example:1883", hall="h")
    assert "monitor.keepalive_s" in load(keepalive_s=0)
    assert "monitor.state_every_s" in load(state_every_s=300)
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    secret.chmod(0o644)
    msg = load(broker="mqtts://broker.example:8883", hall="h", username="h/001", password_file=str(secret))
    assert "monitor.password_file" in msg and "readable by other users" in msg
    assert "go together" in load(broker="mqtts://b.example:8883", hall="h", username="h/001")
    secret.chmod(0o640)
    (tmp_path / "k.toml").write_text(
        f'[monitor]\nbroker = "mqtts://b.example:8883"\nhall = "h"\nusername = "h/001"\n'
        f'password_file = "{secret}"\n'
    )
    assert load_config(tmp_path / "k.toml", tmp_path / "state").monitor.hall == "h"
    assert MonitorConfig().broker == ""  # off unless configured


def test_the_state_schema_lets_no_number_no_photo_and_no_text_through():
    number = "4401001202612020017"
    snap = {
        "version": "0.1.0",
        "number": number,  # not a field: dropped
        "photo": JPEG + b"\x00" * 10,
        "printer": {"paper": "low", "fault": number, "city": "深圳"},
        "session": "review",
        "sessions_today": {"issued": 3, number: 1, "深圳": 2, "completed": "many"},
        "numbers_today": 3.0,
        "outbox": {"backlog": 2, "oldest_s": 12.7, "last": number},
        "update": {"phase": "idle", "pending": number, "last": "committed", "last_at": 1_700_000_000},
        "camera_ok": "yes",
        "cpu_temp_c": 51.234,
    }
    state = clean(snap)
    text = json.dumps(state, ensure_ascii=False)
    assert number not in text and "深圳" not in text and "ffd8" not in text.lower()
    assert state["printer"] == {"paper": "low", "fault": None}
    assert state["sessions_today"] == {"issued": 3}
    assert state["numbers_today"] == 3 and state["outbox"] == {"backlog": 2, "oldest_s": 12}
    assert state["update"]["pending"] is None and state["camera_ok"] is None and state["cpu_temp_c"] == 51.2
    assert set(state) == set(clean({}))  # always the same fields


def test_state_changes_announce_events_from_the_policy():
    def st(**kw):
        base = {"printer": {"paper": "ok", "fault": None}, "camera_ok": True, "store": "ok",
                "update": {"last": None, "last_at": None}}
        base.update(kw)
        return clean(base)

    ok = st()
    assert events(None, ok) == []  # a healthy start says nothing
    low = st(printer={"paper": "low", "fault": None})
    assert [e["kind"] for e in events(ok, low)] == ["paper_low"]
    out = st(printer={"paper": "out", "fault": "paper_out"})
    assert events(low, out) == [{"kind": "paper_out"}, {"kind": "printer_fault", "value": "paper_out"}]
    assert [e["kind"] for e in events(out, ok)] == ["paper_ok"]
    assert [e["kind"] for e in events(None, out)] == ["paper_out", "printer_fault"]  # a start with no paper
    assert [e["kind"] for e in events(ok, st(camera_ok=False))] == ["camera_lost"]
    assert [e["kind"] for e in events(ok, st(store="error"))] == ["store_error"]
    rolled = st(update={"last": "rolled-back", "last_at": 1000}, release="1.4.1")
    assert events(ok, rolled) == [{"kind": "update_rolled_back", "version": "1.4.1"}]
    assert events(rolled, rolled, announced_update_at=1000) == []  # announced once, also across restarts


# Home Assistant's MQTT discovery keys (homeassistant/components/mqtt/abbreviations.py: the full names
# of ABBREVIATIONS and DEVICE_ABBREVIATIONS) and the classes its sensor and binary_sensor accept.
HA_KEYS = {
    "availability", "availability_mode", "availability_template", "availability_topic", "device",
    "device_class", "enabled_by_default", "encoding", "entity_category", "expire_after", "force_update",
    "icon", "json_attributes_template", "json_attributes_topic", "name", "object_id", "payload_available",
    "payload_not_available", "payload_off", "payload_on", "qos", "state_class", "state_topic",
    "unique_id", "unit_of_measurement", "value_template", "off_delay", "suggested_display_precision",
}
HA_DEVICE_KEYS = {"connections", "configuration_url", "identifiers", "name", "manufacturer", "model",
                  "sw_version", "hw_version", "suggested_area", "via_device"}
HA_SENSOR_CLASSES = {"temperature", "duration", "data_size", "timestamp", "battery", "enum"}
HA_BINARY_CLASSES = {"problem", "connectivity", "running"}
HA_STATE_CLASSES = {"measurement", "total", "total_increasing"}
HA_ENTITY_CATEGORIES = {"config", "diagnostic"}
HA_UNITS = {"temperature": {"°C", "°F", "K"}, "duration": {"d", "h", "min", "s", "ms"},
            "data_size": {"B", "kB", "MB", "GB", "TB", "KiB", "MiB", "GiB"}}


def test_home_assistant_discovery_payloads_use_home_assistants_schema():
    import re

    msgs = discovery("tianhe", "001")
    assert len({t for t, _ in msgs}) == len(msgs) >= 8
    # HA's discovery topic: <prefix>/<component>/[<node_id>/]<object_id>/config (discovery.py TOPIC_MATCHER)
    matcher = re.compile(r"homeassistant/(sensor|binary_sensor)/([a-zA-Z0-9_-]+)/([a-zA-Z0-9_-]+)/config")
    ids = set()
    for topic, payload in msgs:
        m = matcher.fullmatch(topic)
        assert m, topic
        config = json.loads(payload)
        assert set(config) <= HA_KEYS, set(config) - HA_KEYS
        assert set(config["device"]) <= HA_DEVICE_KEYS
        assert config["device"]["identifiers"] == ["kiosk_tianhe_001"]
        assert config["state_topic"] == "kiosk/tianhe/001/state"
        assert config["availability_topic"] == "kiosk/tianhe/001/availability"
        assert (config["payload_available"], config["payload_not_available"]) == ("online", "offline")
        assert "{{" in config["value_template"] and "value_json." in config["value_template"]
        ids.add(config["unique_id"])
        cls = config.get("device_class")
        if m.group(1) == "sensor":
            assert cls is None or cls in HA_SENSOR_CLASSES
            if cls in HA_UNITS:
                assert config["unit_of_measurement"] in HA_UNITS[cls]
        else:
            assert cls in HA_BINARY_CLASSES and (config["payload_on"], config["payload_off"]) == ("ON", "OFF")
        assert config.get("state_class", "measurement") in HA_STATE_CLASSES
        assert config.get("entity_category", "config") in HA_ENTITY_CATEGORIES
    assert len(ids) == len(msgs)  # unique ids, one per entity


def test_value_templates_read_fields_the_state_has():
    """Each template names a path of the published state (Jinja is Home Assistant's; the path is ours)."""
    import re

    state = clean({})
    for _topic, payload in discovery("tianhe", "001"):
        for path in re.findall(r"value_json\.([a-z_.]+)", json.loads(payload)["value_template"]):
            node = state
            for part in path.split("."):
                assert isinstance(node, dict) and part in node, path
                node = node[part]


# --- against a real broker ------------------------------------------------------------------------


def fleet_json(url: str, *extra: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "fleet", "watch", "--json", "--broker", url, "--wait", "5",
         *extra],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@needs_broker
@pytest.mark.slow
def test_kiosk_run_appears_online_with_its_state_and_goes_offline_when_killed(tmp_path, broker):
    env = {**os.environ, "KIOSK_STATE_DIR": str(tmp_path / "state"),
           "KIOSK_CONFIG": str(monitor_config(tmp_path, broker.url))}
    env.pop("NOTIFY_SOCKET", None)
    rec = Recorder(broker.url, "kiosk/#")
    proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "run", "--sim", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("kiosk: UI on")
        assert rec.wait(lambda: rec.last("kiosk/tianhe/001/state"))
        snap = fleet_json(broker.url)
        [row] = snap["terminals"]
        assert (row["hall"], row["station"], row["online"]) == ("tianhe", "001", True)
        assert row["paper"] == "ok" and row["problems"] == [] and row["version"] and row["backlog"] == 0
        state = json.loads(rec.last("kiosk/tianhe/001/state"))
        assert state["session"] == "idle" and state["camera_ok"] is True and state["store"] == "ok"
        assert fleet_json(broker.url, "--hall", "other")["terminals"] == []

        proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        assert rec.wait(lambda: rec.last("kiosk/tianhe/001/availability") == b"offline", 10)
        assert time.monotonic() - killed <= 1.5 * 2  # the broker's last will, within 1.5 x keepalive
        [row] = fleet_json(broker.url)["terminals"]
        assert row["online"] is False and row["problems"][0] == "offline" and row["since"] == state["at"]
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(10)
        rec.close()


@needs_broker
@pytest.mark.slow
def test_a_hung_terminal_is_reported_offline_by_the_brokers_keepalive(tmp_path, broker):
    """SIGSTOP: the connection stays open but silent (a frozen terminal, a pulled cable): the broker's
    keepalive, not a closed socket, sends the will."""
    env = {**os.environ, "KIOSK_STATE_DIR": str(tmp_path / "state"),
           "KIOSK_CONFIG": str(monitor_config(tmp_path, broker.url))}
    env.pop("NOTIFY_SOCKET", None)
    rec = Recorder(broker.url, "kiosk/#")
    proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "run", "--sim", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("kiosk: UI on")
        assert rec.wait(lambda: rec.last("kiosk/tianhe/001/availability") == b"online")
        time.sleep(0.5)
        proc.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        assert rec.wait(lambda: rec.last("kiosk/tianhe/001/availability") == b"offline", 10)
        took = time.monotonic() - stopped
        # mosquitto drops a client 1.5 x keepalive after its last packet, checking its clients every
        # 5 s (mosquitto 2.0, src/keepalive.c: `last_keepalive_check + 5 < db.now_s`): so up to ~6 s later
        assert took <= 1.5 * 2 + 6.0, took
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        proc.wait(10)
        rec.close()


def _service(tmp_path: Path, url: str, start_service, **monitor: object):
    cfg = load_config(monitor_config(tmp_path, url, **monitor), tmp_path / "state")
    return start_service(cfg, done_s=0.5)


def _whole_session(svc, timeout: float = 60.0) -> dict[str, float]:
    """One citizen through the simulated station; seconds spent in each state, and the total."""
    from kiosk.capture.session import State

    def wait(cond, t=timeout):
        end = time.monotonic() + t
        while time.monotonic() < end:
            if cond():
                return True
            time.sleep(0.01)
        raise AssertionError(f"session stuck in {svc.session.state}")

    mark = len(svc.session.history)
    svc.session.post("start")
    wait(lambda: svc.session.state is State.CHOOSE)
    svc.session.post("choose", profile="id_card", city="shenzhen")
    svc.session.post("consent")
    svc.session.post("accept")  # requirements
    wait(lambda: svc.session.state in (State.REVIEW, State.FAILSAFE))
    assert svc.session.state is State.REVIEW
    svc.session.post("accept")
    wait(lambda: svc.session.state is State.IDLE)
    hist = svc.session.history[mark:]
    spent: dict[str, float] = {}
    for (t0, state, _), (t1, _, _) in zip(hist, hist[1:], strict=False):
        spent[state] = spent.get(state, 0.0) + t1 - t0
    spent["total"] = hist[-1][0] - hist[0][0]
    return spent


@needs_broker
@pytest.mark.slow
@pytest.mark.parametrize("away", ["stopped", "frozen"])
def test_a_broker_away_for_a_whole_session_changes_nothing_for_the_citizen(
    tmp_path, broker, start_service, away
):
    """stopped: connections refused the whole session (reconnect attempts with back-off); frozen: the
    connection stays open and nothing answers (a hung or very slow broker), publishes go nowhere."""
    from kiosk.service_api import call

    rec = Recorder(broker.url, "kiosk/#")
    svc = _service(tmp_path, broker.url, start_service)
    try:
        assert rec.wait(lambda: rec.last("kiosk/tianhe/001/state"))
        assert call(svc.api_path, "status")["monitor"]["connected"] is True
        with_broker = _whole_session(svc)
        assert rec.wait(lambda: (json.loads(rec.last("kiosk/tianhe/001/state") or b"{}").get("numbers_today")
                                 == 1))
        if away == "stopped":
            broker.stop()
            assert rec.wait(lambda: not svc.monitor.connected.is_set(), 5)
        else:
            broker.freeze()
        without = _whole_session(svc)
        if away == "stopped":
            assert not svc.monitor.connected.is_set()  # the whole session ran with the broker away
        # the same session: the broker's absence adds nothing a citizen could notice
        for state in ("countdown", "capture", "handover"):
            assert without[state] <= with_broker[state] * 1.5 + 0.5, (state, with_broker, without)
        assert without["total"] <= with_broker["total"] * 1.5 + 2.0, (with_broker, without)
        assert svc.session.sessions == 2 and svc.monitor.dropped == 0

        rec.close()
        if away == "stopped":
            broker.start()  # the same port: the terminal reconnects (back-off) and publishes its state again
        else:
            broker.freeze(False)
        rec = Recorder(broker.url, "kiosk/#")
        state = rec.wait(lambda: [s for s in [json.loads(rec.last("kiosk/tianhe/001/state") or b"{}")]
                                  if s.get("numbers_today") == 2], 40)
        assert state, rec.last("kiosk/tianhe/001/state")
        state = state[0]
        assert state["sessions_today"]["completed"] == 2
        assert state["sessions_today"]["issued"] == 2
        assert rec.wait(lambda: rec.last("kiosk/tianhe/001/availability") == b"online", 30)
        if away == "stopped":
            assert state["monitor"]["reconnects"] >= 1
    finally:
        rec.close()


@needs_broker
@pytest.mark.slow
def test_no_message_of_any_kind_carries_the_number_or_the_photo(tmp_path, broker, start_service, monkeypatch):
    """availability, state, event (paper out during the slip, the printer fault, paper back) and the
    Home Assistant discovery messages, against the session's own number and JPEG bytes."""
    monkeypatch.setenv("KIOSK_SIM_PRINTER_FAULT_EVERY", "1")  # the virtual printer runs out in the slip
    rec = Recorder(broker.url, "#")
    svc = _service(tmp_path, broker.url, start_service)
    try:
        assert rec.wait(lambda: rec.last("kiosk/tianhe/001/state"))
        _whole_session(svc)
        number = svc.receipts.store.db.execute("SELECT number FROM numbers").fetchone()[0]
        assert rec.wait(lambda: any(b'"paper_out"' in p for t, p, _ in rec.messages if t.endswith("/event")))
        out = subprocess.run(
            [sys.executable, "-m", "kiosk.cli", "fleet", "ha-discovery", "--broker", broker.url, "--json"],
            capture_output=True, text=True, timeout=30,
        )
        assert out.returncode == 0, out.stderr
        assert rec.wait(lambda: any(t.startswith("homeassistant/") for t, _, _ in rec.messages))
        time.sleep(0.5)
        kinds = {t.split("/")[-1] if t.startswith("kiosk/") else "discovery" for t, _, _ in rec.messages}
        assert kinds == {"availability", "state", "event", "discovery"}
        events_seen = [json.loads(p)["kind"] for t, p, _ in rec.messages if t.endswith("/event")]
        assert "paper_out" in events_seen and "printer_fault" in events_seen
        digits = number.rstrip("X")
        for topic, payload, _ in rec.messages:
            assert number.encode() not in payload and digits.encode() not in payload, topic
            assert JPEG not in payload, topic
        retained = {t for t, _, r in rec.messages if t.endswith("/event") and r}
        assert not retained  # events are not retained
    finally:
        rec.close()


@needs_broker
def test_the_publisher_holds_a_bounded_queue_and_counts_what_it_drops(tmp_path):
    """No broker at all: events pile up to queue_max, the oldest go, and every drop is counted."""
    from kiosk.monitor import Monitor

    mc = MonitorConfig(broker=f"mqtt://127.0.0.1:{free_port()}", hall="tianhe", keepalive_s=2, queue_max=5,
                       poll_s=60)
    mon = Monitor(mc, "001", lambda: {}, version="0.1.0", state_dir=tmp_path).start()
    try:
        for _ in range(12):
            mon.event("paper_low")
        mon.session_changed("done", "idle")  # the session's call: a counter and a wake-up, no network
        mon.event("not_a_kind")  # only the policy's kinds
        assert mon.dropped == 7 and mon.status()["queued"] <= 6 and not mon.connected.is_set()
    finally:
        mon.stop(timeout=1)
    assert not mon._worker.is_alive()


def test_the_fleet_view_lists_problems_first_offline_first():
    from kiosk.monitor.watch import FleetView, render_table

    view = FleetView()
    state = clean({"version": "0.1.0", "printer": {"paper": "ok"}, "outbox": {"backlog": 0}, "at": 100})
    low = clean({"version": "0.1.0", "printer": {"paper": "low"}, "outbox": {"backlog": 4, "oldest_s": 7200}})
    fleet = (("001", b"online", state), ("002", b"offline", state), ("003", b"online", low))
    for station, avail, st in fleet:
        view.feed(f"kiosk/tianhe/{station}/availability", avail, retained=True)
        view.feed(f"kiosk/tianhe/{station}/state", json.dumps(st).encode(), retained=True)
    view.feed("kiosk/other/009/availability", b"online", retained=True)
    view.feed("not/a/terminal/topic", b"x")
    view.feed("kiosk/tianhe/004/state", b"\xff not json")
    rows = view.rows()
    assert [r["station"] for r in rows] == ["002", "003", "009", "001", "004"]
    assert rows[0]["problems"] == ["offline"] and rows[0]["since"] == 100  # the last state's time
    assert rows[1]["problems"] == ["paper low", "backlog"]
    table = render_table(rows, now=160).splitlines()
    assert table[0].split()[:4] == ["HALL", "STATION", "ONLINE", "SINCE"]
    assert table[1].split()[:4] == ["tianhe", "002", "OFFLINE", "60s"]
    assert FleetView("other").hall == "other"
    only = FleetView("other")
    only.feed("kiosk/tianhe/001/availability", b"online", retained=True)
    assert only.rows() == []


@needs_broker
def test_a_refusing_broker_leaves_the_terminal_running_and_a_watcher_gets_one_line(tmp_path):
    """Wrong credentials: the broker refuses; the publisher keeps trying in the background, nothing
    raises; with the right password it connects. The watcher's command says why in one line."""
    from kiosk.monitor import Monitor

    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "tianhe/001", "right"], check=True)
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "watcher", "w"], check=True)
    conf = f"allow_anonymous false\npassword_file {passwd}\n"
    if os.geteuid() == 0:
        conf += "user root\n"
    b = Mosquitto(tmp_path / "broker", conf=conf).start()
    wrong, right = tmp_path / "wrong", tmp_path / "right"
    for path, word in ((wrong, "nope"), (right, "right")):
        path.write_text(word + "\n")
        path.chmod(0o600)
    mons = []
    try:
        for pw in (wrong, right):
            mc = MonitorConfig(broker=b.url, hall="tianhe", keepalive_s=2, username="tianhe/001",
                               password_file=str(pw), poll_s=0.2)
            mons.append(Monitor(mc, "001", lambda: {}, version="0.1.0", state_dir=tmp_path).start())
        bad, good = mons
        assert good.connected.wait(10)
        bad.session_changed("done", "idle")
        time.sleep(1.0)
        assert not bad.connected.is_set() and bad.status()["connected"] is False
        cfg = tmp_path / "w.toml"
        cfg.write_text(f'[monitor]\nusername = "watcher"\npassword_file = "{wrong}"\n')
        out = subprocess.run([sys.executable, "-m", "kiosk.cli", "--config", str(cfg), "fleet", "watch",
                              "--json", "--broker", b.url, "--wait", "5"], capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 1 and out.stderr.count("\n") == 1 and "Not authorized" in out.stderr
    finally:
        for m in mons:
            m.stop(timeout=1)
        b.stop()


@needs_broker
def test_fleet_watch_live_prints_the_table_and_stops_on_ctrl_c(tmp_path, broker):
    from kiosk.monitor import Monitor

    mc = MonitorConfig(broker=broker.url, hall="tianhe", keepalive_s=5, poll_s=0.2)
    mon = Monitor(mc, "001", lambda: {"printer": {"paper": "out", "fault": "paper_out"}}, version="0.1.0",
                  state_dir=tmp_path).start()
    proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "fleet", "watch", "--broker", broker.url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert mon.connected.wait(10)
        lines = []
        while not any("tianhe" in line and "paper out" in line for line in lines):
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            lines.append(line)
        row = next(line for line in lines if "tianhe" in line and "paper out" in line).split()
        assert row[:3] == ["tianhe", "001", "online"] and "paper_out" in row
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.wait(5)
        mon.stop(timeout=1)


def test_the_station_tells_the_monitor_counts_of_the_records_and_nothing_else(tmp_path):
    """kiosk.station.monitor_counts on a real store: numbers today, outcomes today, queued prints,
    the upload backlog and the age of its oldest entry -- no number, city or document in it."""
    from kiosk.receipt.authority import LocalAuthority
    from kiosk.receipt.issue import issue_receipt
    from kiosk.station import monitor_counts
    from kiosk.store import Store
    from tests.test_receipt_support import jpeg

    with Store(tmp_path) as s:
        a = LocalAuthority("001", upload=True)
        numbers = [issue_receipt(s, a, None, "id_card", "shenzhen", jpeg()).number for _ in range(3)]
        s.outbox_result(s.number(numbers[0]).session_id, "confirmed")
        now = time.time() + 30
        counts = monitor_counts(s, "Asia/Shanghai", now=now)
        assert counts["numbers_today"] == 3 and counts["queued_prints"] == 3  # no printer: all queued
        assert counts["sessions_today"] == {"issued_print_no_printer": 3}
        assert counts["outbox"]["backlog"] == 2 and 30 <= counts["outbox"]["oldest_s"] < 60
        text = json.dumps(counts)
        assert not any(n in text for n in numbers)
        assert "shenzhen" not in text and "id_card" not in text
        assert monitor_counts(s, "Asia/Shanghai", now=now + 86400)["numbers_today"] == 0  # a new day
