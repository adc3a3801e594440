"""The example broker of hardware/mosquitto/ (TLS, per-terminal client certificates, the ACL) run for
real: a terminal reports under its own topic only, a watcher reads and cannot write, a client
without a certificate is turned away."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk.config import MonitorConfig
from kiosk.monitor import Monitor
from kiosk.monitor.watch import connect_view, snapshot
from tests.pki import CA
from tests.test_monitor import Mosquitto, free_port, needs_broker

HW = Path(__file__).resolve().parents[1] / "hardware" / "mosquitto"


@pytest.fixture
def tls_broker(tmp_path):
    ca = CA(tmp_path / "pki", name="fleet monitoring CA")
    server = ca.issue("broker", "broker.test", hosts=("localhost", "127.0.0.1"))
    port = free_port()
    conf = (HW / "mosquitto.conf").read_text()
    for old, new in {
        "listener 8883": f"listener {port} 127.0.0.1",
        "/etc/mosquitto/certs/fleet-ca.pem": str(ca.pem),
        "/etc/mosquitto/certs/broker.pem": str(server.cert),
        "/etc/mosquitto/certs/broker.key": str(server.key),
        "/etc/mosquitto/kiosk.acl": str(HW / "acl"),
        "persistence true": "persistence false",
    }.items():
        assert old in conf
        conf = conf.replace(old, new)
    if os.geteuid() == 0:  # mosquitto started by root drops to user mosquitto, who cannot read tmp_path
        conf += "user root\n"
    b = Mosquitto(tmp_path / "broker", port=port)
    b.conf.write_text(conf)
    b.start()
    yield b, ca
    b.stop()


def creds(ca: CA, stem: str, cn: str) -> MonitorConfig:
    issued = ca.issue(stem, cn, client=True)
    return MonitorConfig(client_cert=str(issued.cert), client_key=str(issued.key), ca_file=str(ca.pem))


@needs_broker
@pytest.mark.slow
def test_the_example_broker_confines_each_terminal_to_its_own_topic(tmp_path, tls_broker):
    from dataclasses import replace

    broker, ca = tls_broker
    url = f"mqtts://127.0.0.1:{broker.port}"
    watcher = creds(ca, "watcher", "watcher")
    client, view = connect_view(watcher, url, None, "watcher-test")
    assert snapshot(view, 10) and not view.failure
    terminal = replace(creds(ca, "t001", "tianhe/001"), broker=url, hall="tianhe", keepalive_s=5, poll_s=0.2)
    mon = Monitor(terminal, "001", lambda: {"printer": {"paper": "low"}}, version="0.1.0",
                  state_dir=tmp_path).start()
    try:
        end = time.monotonic() + 15
        while time.monotonic() < end and not (view.rows() and view.rows()[0]["paper"]):  # online, then state
            time.sleep(0.05)
        [row] = view.rows()
        assert (row["hall"], row["station"], row["online"], row["paper"]) == ("tianhe", "001", True, "low")

        # the same terminal writing as another one, and a watcher writing: the broker drops both
        from kiosk.monitor.client import make_client

        rogue, where = make_client(replace(terminal, broker=url), "tianhe/001-rogue", url)
        rogue.connect(where.host, where.port)
        rogue.loop_start()
        rogue.publish("kiosk/tianhe/002/availability", b"online", qos=1, retain=True).wait_for_publish(5)
        rogue.publish("kiosk/tianhe/001/availability", b"online", qos=1).wait_for_publish(5)  # its own: fine
        client.publish("kiosk/tianhe/001/state", b'{"printer":{"paper":"ok"}}', qos=1).wait_for_publish(5)
        time.sleep(1.0)
        rogue.disconnect()
        rogue.loop_stop()
        assert [r["station"] for r in view.rows()] == ["001"]  # no 002 appeared
        assert view.rows()[0]["paper"] == "low"  # the watcher's write did not land

        # a terminal may not read the fleet: mosquitto grants the subscription and delivers nothing
        tclient, tview = connect_view(terminal, url, None, "tianhe/001-reader")
        assert snapshot(tview, 10, quiet=1.0)
        tclient.loop_stop()
        assert tview.messages == 0 and tview.rows() == []

        # no certificate: turned away at the TLS handshake
        cfg = tmp_path / "anon.toml"
        cfg.write_text(f'[monitor]\nca_file = "{ca.pem}"\n')
        watch = [sys.executable, "-m", "kiosk.cli", "--config", str(cfg), "fleet", "watch", "--json",
                 "--broker", url]
        out = subprocess.run([*watch, "--wait", "3"], capture_output=True, text=True, timeout=30)
        assert out.returncode != 0 and out.stderr.count("\n") == 1
        # the watcher's certificate through the command
        cfg.write_text(f'[monitor]\nca_file = "{ca.pem}"\nclient_cert = "{watcher.client_cert}"\n'
                       f'client_key = "{watcher.client_key}"\n')
        out = subprocess.run(watch, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert [r["station"] for r in json.loads(out.stdout)["terminals"]] == ["001"]
    finally:
        mon.stop()
        client.loop_stop()
