"""Running under systemd and updating a fleet.

For the service (``kiosk run``):

- ``sdnotify.Notifier`` — sd_notify over ``$NOTIFY_SOCKET`` (no-op outside systemd).
- ``health.run_startup_checks`` + ``health.announce_ready`` — READY=1 only after camera, lights,
  printer and store were checked (failures of optional parts are reported as degraded).
- ``health.Watchdog`` — ``alive(component)`` when a part delivers, ``beat()`` once per main-loop
  iteration; keep-alives stop when the loop or a part stalls.
- ``inhibit.inhibit_updates(state_dir)`` — held around one citizen's session; updates wait.

For the terminal's updater (``kiosk update``): ``bundle`` (signed release bundles), ``keys``,
``fetch`` (TUF client), ``repository`` (TUF publisher), ``service`` (restart + health),
``updater`` (A/B switch, rollback, recovery), ``manage`` (one function per subcommand), ``wheels``
(a bundle's site directory for another target from its lock in ``locks/``, ELF machine checks).
"""
