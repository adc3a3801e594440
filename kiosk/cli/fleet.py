"""`kiosk fleet watch|ha-discovery`: every terminal of every hall from the MQTT broker (kiosk.monitor).

Read-only monitoring: the watcher subscribes to kiosk/<hall>/<station>/...; no command goes to a
terminal. The broker and credentials come from [monitor] (the watcher's own) or --broker.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from typing import Any

from kiosk.cli.common import add_command, add_json, emit
from kiosk.config import Config
from kiosk.errors import InputError, KioskError


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add_command(
        sub,
        "fleet",
        "fleet monitoring over MQTT: every terminal at a glance",
        [common],
        details="Terminals publish their availability and state to the broker of [monitor]; this reads "
        "them (retained messages: a watcher sees the fleet at once). Read-only: no remote commands.",
    )
    fsub = p.add_subparsers(dest="fleet_command", metavar="ACTION", required=True)
    w = add_command(
        fsub, "watch", "a live table of every terminal, problems first", [common], cmd_watch,
        "Offline terminals first (and since when), then paper, printer faults, failed updates and "
        "upload backlogs; --json prints one snapshot and exits.",
    )
    _broker_options(w)
    add_json(w, "print one JSON snapshot of every terminal and exit")
    w.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the broker (default 10)")
    h = add_command(
        fsub, "ha-discovery", "publish Home Assistant MQTT discovery for every terminal seen", [common],
        cmd_ha_discovery,
        "Retained homeassistant/<component>/kiosk_<hall>_<station>/<entity>/config messages: paper, "
        "printer fault, camera, backlog, numbers today, version, update, disk, CPU temperature. Run it "
        "again when terminals are added (a timer on the monitoring host).",
    )
    _broker_options(h)
    h.add_argument("--prefix", default="homeassistant", help="Home Assistant's discovery prefix")
    h.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the broker (default 10)")
    add_json(h, "print the topics published as JSON")


def _broker_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", help="mqtt://HOST:PORT or mqtts://HOST:PORT (default: [monitor] broker)")
    p.add_argument("--hall", help="only this hall (default: every hall)")


def _connect(args: argparse.Namespace, cfg: Config) -> tuple[Any, Any]:
    import re

    from kiosk.monitor.client import Broker, MonitorError
    from kiosk.monitor.watch import connect_view, snapshot

    broker = args.broker or cfg.monitor.broker
    if not broker:
        raise InputError("no broker: give --broker mqtts://HOST:PORT or set [monitor] broker")
    try:
        Broker.parse(broker)
    except MonitorError as exc:
        raise InputError(str(exc)) from None
    if args.hall is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", args.hall):
        raise InputError(f"--hall {args.hall!r}: expected letters, digits, _ or -")
    if args.wait <= 0:
        raise InputError("--wait must be positive")
    try:
        client, view = connect_view(
            cfg.monitor, broker, args.hall, f"watch-{socket.gethostname()}-{os.getpid()}", args.wait
        )
    except MonitorError as exc:
        raise KioskError(f"broker {broker}: {exc}") from None
    ok = snapshot(view, args.wait)
    if view.failure:
        client.loop_stop()
        raise KioskError(f"broker {broker}: {view.failure[0]}")
    if not ok:
        client.loop_stop()
        raise KioskError(f"broker {broker} did not answer within {args.wait:g} s")
    return client, view


def cmd_watch(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.monitor.watch import render_table

    client, view = _connect(args, cfg)
    try:
        if args.json:
            emit({"at": int(time.time()), "terminals": view.rows()})
            return 0
        tty = sys.stdout.isatty()
        while True:
            text = render_table(view.rows())
            sys.stdout.write(("\x1b[H\x1b[2J" if tty else "\n") + text + "\n")
            sys.stdout.flush()
            view.changed.clear()
            view.changed.wait(1.0 if tty else 30.0)  # "since" ticks on a screen; a pipe gets changes
    except KeyboardInterrupt:
        return 0
    finally:
        client.disconnect()
        client.loop_stop()


def cmd_ha_discovery(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.monitor.homeassistant import discovery

    if not args.prefix or any(c in args.prefix for c in "+#"):
        raise InputError(f"--prefix {args.prefix!r}: not a topic prefix")
    client, view = _connect(args, cfg)
    published = []
    try:
        infos = []
        for row in view.rows():
            for topic, payload in discovery(row["hall"], row["station"], args.prefix):
                infos.append(client.publish(topic, payload, qos=1, retain=True))
                published.append(topic)
        end = time.monotonic() + args.wait
        for info in infos:
            info.wait_for_publish(max(0.01, end - time.monotonic()))
            if not info.is_published():
                raise KioskError(f"the broker did not take the discovery messages within {args.wait:g} s")
    finally:
        client.disconnect()
        client.loop_stop()
    if args.json:
        emit({"terminals": len(view.rows()), "topics": published})
    else:
        print(f"published {len(published)} discovery message(s) for {len(view.rows())} terminal(s)")
    return 0
