"""What the photo engine returns: typed check results, a check report, the finished photo.

Everything inside the program passes these objects; ``to_json`` makes the DESIGN.md JSON of
``kiosk check --json`` / ``make-photo --json`` only at the edges (CLI, UI state, demo output).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kiosk.photo.compose import Placement
from kiosk.photo.encode import Encoded
from kiosk.photo.profiles import load_messages


@dataclass
class CheckResult:
    """One check's measured value, its threshold and verdict; the message follows from `outcome`."""

    id: str
    value: Any
    threshold: Any
    passed: bool
    outcome: str  # key into kiosk/text/check.toml: "pass", "fail", "too_dark", ...
    severity: str = "error"
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.passed = bool(self.passed)  # a numpy comparison gives np.bool_, which `is True` is not

    def message(self) -> dict[str, str]:
        """The citizen-facing text of this outcome: {"zh", "en"}."""
        msgs = load_messages()
        return (
            msgs.get(self.id, {}).get(self.outcome)
            or msgs.get(self.id, {}).get("fail")
            or msgs["not_measured"][""]
        )

    @property
    def message_zh(self) -> str:
        return self.message()["zh"]

    @property
    def message_en(self) -> str:
        return self.message()["en"]

    @property
    def blocking(self) -> bool:
        """A failed check of severity "error": it makes the photo non-compliant."""
        return not self.passed and self.severity == "error"

    def to_json(self) -> dict[str, Any]:
        text = self.message()
        out = {
            "id": self.id,
            "value": plain(self.value),
            "threshold": plain(self.threshold),
            "passed": bool(self.passed),
            "severity": self.severity,
            "message_zh": text["zh"],
            "message_en": text["en"],
        }
        if self.details:
            out["details"] = plain(self.details)
        return out


def plain(v: Any) -> Any:
    """JSON-friendly copy with floats rounded to what a measure can claim."""
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [plain(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (float, np.floating)):
        return round(float(v), 3)
    if isinstance(v, np.integer):
        return int(v)
    return v


@dataclass
class CheckReport:
    """All checks of one image against one profile, in the profile's order."""

    profile: str
    profile_version: str
    checks: list[CheckResult]

    @property
    def compliant(self) -> bool:
        """Compliant when no check of severity "error" failed (warnings do not block)."""
        return not any(c.blocking for c in self.checks)

    def get(self, check_id: str) -> CheckResult | None:
        return next((c for c in self.checks if c.id == check_id), None)

    def failures(self) -> list[CheckResult]:
        """The blocking failures, in the profile's order (the first is the one to tell first)."""
        return [c for c in self.checks if c.blocking]

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "profile_version": self.profile_version,
            "compliant": self.compliant,
            "checks": [c.to_json() for c in self.checks],
        }


@dataclass
class PhotoResult:
    """The document photo: its JPEG bytes and the report of those bytes decoded again."""

    jpeg: bytes
    report: CheckReport
    encoding: Encoded
    placement: Placement
    source_size: tuple[int, int]  # width, height of the image the photo was made from

    @property
    def compliant(self) -> bool:
        return self.report.compliant

    def to_json(self, output: str | None = None) -> dict[str, Any]:
        """make-photo's JSON; ``output`` is the path the bytes were written to, when they were."""
        head = {"output": output} if output is not None else {}
        return {
            **head,
            **self.report.to_json(),
            "encoding": self.encoding.to_json(),
            "placement": self.placement.to_json(),
            "source": {"width": self.source_size[0], "height": self.source_size[1]},
        }
