"""Home Assistant, the dashboard halls already run: MQTT discovery messages for every terminal.

Home Assistant builds its entities from retained JSON at
``homeassistant/<component>/<node_id>/<object_id>/config`` (its MQTT "discovery"); each entity here
reads the terminal's retained state topic with a template and the availability topic, so nothing
but these messages is needed. They are published by `kiosk fleet ha-discovery` with the fleet's
credentials, not by the terminals: a terminal writes under its own kiosk/<hall>/<station>/ only.
The entities themselves are data (ENTITIES), one line each.
"""

from __future__ import annotations

import json
from typing import Any

from kiosk.monitor.client import Topics

PREFIX = "homeassistant"

# (component, object id, name, value template, extra keys)
ENTITIES: list[tuple[str, str, str, str, dict[str, Any]]] = [
    ("sensor", "paper", "Paper", "{{ value_json.printer.paper }}", {"icon": "mdi:paper-roll"}),
    ("binary_sensor", "printer_fault", "Printer fault",
     "{{ 'ON' if value_json.printer.fault else 'OFF' }}", {"device_class": "problem"}),
    ("binary_sensor", "camera", "Camera", "{{ 'OFF' if value_json.camera_ok else 'ON' }}",
     {"device_class": "problem"}),
    ("sensor", "backlog", "Upload backlog", "{{ value_json.outbox.backlog }}",
     {"state_class": "measurement", "icon": "mdi:tray-full"}),
    ("sensor", "backlog_oldest", "Oldest upload waiting", "{{ value_json.outbox.oldest_s or 0 }}",
     {"device_class": "duration", "unit_of_measurement": "s", "state_class": "measurement"}),
    ("sensor", "numbers_today", "Numbers issued today", "{{ value_json.numbers_today }}",
     {"state_class": "measurement", "icon": "mdi:counter"}),
    ("sensor", "queued_prints", "Queued prints", "{{ value_json.queued_prints }}",
     {"state_class": "measurement"}),
    ("sensor", "version", "Version", "{{ value_json.release or value_json.version }}",
     {"entity_category": "diagnostic"}),
    ("sensor", "update", "Update", "{{ value_json.update.phase }}", {"entity_category": "diagnostic"}),
    ("sensor", "disk_free", "Disk free", "{{ value_json.disk_free_mb }}",
     {"device_class": "data_size", "unit_of_measurement": "MB", "state_class": "measurement",
      "entity_category": "diagnostic"}),
    ("sensor", "cpu_temp", "CPU temperature", "{{ value_json.cpu_temp_c }}",
     {"device_class": "temperature", "unit_of_measurement": "°C", "state_class": "measurement",
      "entity_category": "diagnostic"}),
]


def discovery(hall: str, station: str, prefix: str = PREFIX, model: str = "ID-photo terminal"
              ) -> list[tuple[str, bytes]]:
    """(topic, retained payload) of every entity of one terminal."""
    topics = Topics(hall, station)
    node = f"kiosk_{hall}_{station}"
    device = {"identifiers": [node], "name": f"kiosk {hall} {station}", "manufacturer": "kiosk",
              "model": model, "suggested_area": hall}
    out = []
    for component, object_id, name, template, extra in ENTITIES:
        config = {
            "name": name,
            "unique_id": f"{node}_{object_id}",
            "state_topic": topics.state,
            "value_template": template,
            "availability_topic": topics.availability,
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device,
            **extra,
        }
        if component == "binary_sensor":
            config.update(payload_on="ON", payload_off="OFF")
        out.append((f"{prefix}/{component}/{node}/{object_id}/config", json.dumps(config).encode()))
    return out
