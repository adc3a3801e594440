"""The service side of the maintenance console: the ``console.*`` commands on the service API.

The serial client is ``kiosk.console`` (line editor, PIN, shell); it reaches these handlers
only through the service socket. ``parts`` says, as Protocols, what each handler needs from the
store, session, lights, camera, printer and updater.
"""

from kiosk.maintenance.handlers import (
    ConsoleHandlers,
    NotAvailable,
    register_console_handlers,
    systemctl_power,
)
from kiosk.maintenance.parts import MaintenanceContext

__all__ = [
    "ConsoleHandlers",
    "MaintenanceContext",
    "NotAvailable",
    "register_console_handlers",
    "systemctl_power",
]
