"""The one place the session talks to the photo engine (kiosk.photo): the documents on offer, the
thresholds guidance must respect, and the document photo made from a still and re-checked.

Kept narrow on purpose: when the photo engine's API changes, only this module follows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from kiosk.config import VisionConfig
from kiosk.errors import KioskError
from kiosk.photo.profiles import get_profile, load_profiles
from kiosk.photo.results import CheckReport, CheckResult
from kiosk.photo.service import PhotoTools
from kiosk.text import for_error


@dataclass
class CaptureResult:
    """One capture for the session: the document photo and the check of its bytes, or why none was made."""

    profile: str
    jpeg: bytes | None  # None when no photo could be made
    report: CheckReport | None  # the finished photo's checks, measured from `jpeg` decoded again
    # zh/en/check, the first thing to tell the citizen: why no photo could be made, or (when None
    # is given) the first failed check of the report; kept when the photo is wiped
    reason: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if self.reason is None and self.report is not None:
            first = next(iter(self.report.failures()), None)
            if first is not None:
                self.reason = {"zh": first.message_zh, "en": first.message_en, "check": first.id}

    @property
    def compliant(self) -> bool:
        return self.jpeg is not None and self.report is not None and self.report.compliant

    @property
    def checks(self) -> list[CheckResult]:
        return self.report.checks if self.report is not None else []

    def wipe(self) -> None:
        self.jpeg = None
        self.report = None


def documents(
    cities_for: Callable[[str], list[dict[str, str]]] | None = None,
) -> list[dict[str, Any]]:
    """The document choices: id, names, city ids and their names.

    A profile's own city list wins; otherwise ``cities_for`` (the receipt layouts: the cities this
    terminal issues receipts for) supplies them; empty means any city.
    """
    out = []
    for p in load_profiles().values():
        cities = [{"id": c, "zh": c, "en": c} for c in p.cities] or (cities_for(p.id) if cities_for else [])
        out.append(
            {
                "id": p.id,
                "zh": p.document_zh,
                "en": p.document_en,
                "cities": [c["id"] for c in cities],
                # names, and the picker's section (group) when the receipt layouts have one
                "city_names": {c["id"]: {k: v for k, v in c.items() if k != "id"} for c in cities},
            }
        )
    return out


def thresholds(profile_id: str) -> dict[str, Any]:
    return dict(get_profile(profile_id).thresholds)


class PhotoMaker:
    """Loads the photo engine's models once; ``make`` turns a still into the checked document photo."""

    def __init__(self, vision: VisionConfig | None = None, tools: PhotoTools | None = None):
        self.tools = tools or PhotoTools(vision)  # `tools`: share models already loaded

    def make(self, still_rgb: np.ndarray, profile_id: str) -> CaptureResult:
        """Never raises for a bad still: an unusable one is a non-compliant result with a reason.

        The still goes to the engine as it is; the photo stays in memory (no file, no temp dir).
        """
        try:
            photo = self.tools.make(still_rgb, profile_id)
        except KioskError as exc:  # no face, several faces, cannot encode: its code says what to tell
            return CaptureResult(profile_id, None, None, {**for_error(exc), "check": ""})
        return CaptureResult(profile_id, photo.jpeg, photo.report)
