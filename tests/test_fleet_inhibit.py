"""The session's inhibit lock, across real processes: held while the session runs, gone when the
session's process dies (no stale marker after a crash)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from kiosk.fleet.inhibit import exclusive_update, inhibit_updates, session_running

HOLDER = textwrap.dedent(
    """
    import sys, time
    from kiosk.fleet.inhibit import inhibit_updates
    with inhibit_updates(sys.argv[1]):
        print("holding", flush=True)
        time.sleep(60)
    """
)


def test_no_session_ever(tmp_path):
    assert not session_running(tmp_path)
    with exclusive_update(tmp_path) as free:
        assert free


def test_in_process_session_blocks_updates(tmp_path):
    with inhibit_updates(tmp_path) as path:
        assert path.exists()
        assert session_running(tmp_path)
        with exclusive_update(tmp_path) as free:
            assert not free
        with inhibit_updates(tmp_path):  # UI and session may both hold it
            assert session_running(tmp_path)
    assert not session_running(tmp_path)
    with exclusive_update(tmp_path) as free:
        assert free


def test_a_crashed_session_leaves_no_stale_inhibit(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "holding"
        assert session_running(tmp_path)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert not session_running(tmp_path)
        assert (tmp_path / "update.inhibit").exists()  # the file stays; only the lock mattered
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_updater_can_lock_a_read_only_inhibit_file(tmp_path):
    """On the terminal the file belongs to the kiosk user and the updater has no capabilities."""
    with inhibit_updates(tmp_path):
        pass
    (tmp_path / "update.inhibit").chmod(0o444)
    with exclusive_update(tmp_path) as free:
        assert free
