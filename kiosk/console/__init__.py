"""The serial maintenance console: its own process on a serial line, talking to the service API.

``shell`` (the line loop, login, prompt), ``lineedit`` (keys and noise), ``commands`` (what a
technician can type), ``guard`` and ``pin`` (login limits, PIN hash), ``text`` (80-column output),
``audit`` (entries sent to the service, spooled while it is down). The commands run in the service
(``kiosk.maintenance``); only `config` works without it (``kiosk.config_edit``, same checks).
"""
