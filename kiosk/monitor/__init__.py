"""Fleet monitoring on MQTT (Eclipse Mosquitto + paho-mqtt): the terminal's availability, state and
events (``publisher``), and the fleet's view of them (``watch``, ``homeassistant``).

Read-only by design: it is handed a snapshot of counts and device states by the service, and it
never imports the session (kiosk.capture) or the citizens' records (kiosk.store); no remote command
is accepted.
"""

from kiosk.monitor.client import MonitorError, Topics
from kiosk.monitor.publisher import Monitor

__all__ = ["Monitor", "MonitorError", "Topics"]
