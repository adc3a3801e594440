"""The serial maintenance console: its own process on a serial line, talking to the service API.

Console process: ``shell`` (the line loop, login, prompt), ``lineedit`` (keys and noise),
``commands`` (what a technician can type), ``guard`` and ``pin`` (login limits, PIN hash),
``text`` (80-column output). Service side: ``handlers`` (the ``console.*`` API commands),
``config_edit`` (validated atomic config changes). Both: ``audit``.
"""
