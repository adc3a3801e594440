"""Hand-over of the accepted photo to the receipt step.

Until the receipt step is wired in (issue 6: number, store, slip, printer), the hand-over writes
the accepted photo into the state directory (owner-only) and stops there. This is the only
function the lead replaces to wire the receipt.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def hand_over(jpeg: bytes, profile: str, city: str, state_dir: Path) -> dict[str, Any]:
    """Store the accepted document photo; returns what the result screen shows."""
    folder = Path(state_dir) / "accepted"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = (
        f"{time.strftime('%Y%m%d-%H%M%S')}-{profile}-{os.getpid()}-{time.monotonic_ns() % 1_000_000:06d}.jpg"
    )
    path = folder / name
    tmp = folder / f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(jpeg)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return {"photo": str(path), "profile": profile, "city": city, "number": None}
