"""The one place the session talks to the photo engine (kiosk.photo): the documents on offer, the
thresholds guidance must respect, and the document photo made from a still and re-checked.

Kept narrow on purpose: when the photo engine's API changes, only this module follows.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from kiosk.config import VisionConfig
from kiosk.errors import KioskError


@dataclass
class PhotoResult:
    """The document photo of one capture and its check report (re-measured from its bytes)."""

    profile: str
    compliant: bool
    jpeg: bytes | None  # None when no photo could be made
    checks: list[dict[str, Any]] = field(default_factory=list)
    reason: dict[str, str] | None = None  # the first failure, zh/en, for the citizen

    def wipe(self) -> None:
        self.jpeg = None
        self.checks = []


def documents(
    cities_for: Callable[[str], list[dict[str, str]]] | None = None,
) -> list[dict[str, Any]]:
    """The document choices: id, names, city ids and their names.

    A profile's own city list wins; otherwise ``cities_for`` (the receipt layouts: the cities this
    terminal issues receipts for) supplies them; empty means any city.
    """
    from kiosk.photo.profiles import load_profiles

    out = []
    for p in load_profiles().values():
        cities = [{"id": c, "zh": c, "en": c} for c in p.cities] or (cities_for(p.id) if cities_for else [])
        out.append(
            {
                "id": p.id,
                "zh": p.document_zh,
                "en": p.document_en,
                "cities": [c["id"] for c in cities],
                "city_names": {c["id"]: {"zh": c["zh"], "en": c["en"]} for c in cities},
            }
        )
    return out


def thresholds(profile_id: str) -> dict[str, Any]:
    from kiosk.photo.profiles import get_profile

    return dict(get_profile(profile_id).thresholds)


def _first_failure(checks: list[dict[str, Any]]) -> dict[str, str] | None:
    for c in checks:
        if not c.get("passed") and c.get("severity", "error") == "error":
            return {"zh": c.get("message_zh", ""), "en": c.get("message_en", ""), "check": c.get("id", "")}
    return None


class PhotoMaker:
    """Loads the photo engine's models once; ``make`` turns a still into the checked document photo."""

    def __init__(self, vision: VisionConfig | None = None, workdir: Path | None = None):
        from kiosk.photo.service import PhotoTools

        self.tools = PhotoTools(vision)
        self.workdir = workdir

    def make(self, still_rgb: np.ndarray, profile_id: str) -> PhotoResult:
        """Never raises for a bad still: an unusable one is a non-compliant result with a reason."""
        ok, buf = cv2.imencode(
            ".jpg", cv2.cvtColor(still_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]
        )
        if not ok:
            raise KioskError("capture: cannot encode the still")
        # the engine writes atomically to a path; a private temp dir keeps the photo off shared disk
        with tempfile.TemporaryDirectory(prefix="kiosk-photo-", dir=self.workdir) as tmp:
            out = Path(tmp) / "photo.jpg"
            try:
                report = self.tools.make_photo(buf.tobytes(), profile_id, out)
            except KioskError as exc:  # no face, several faces, cannot encode
                msg = str(exc)
                return PhotoResult(
                    profile_id, False, None, [], {"zh": _zh_reason(msg), "en": msg, "check": ""}
                )
            data = out.read_bytes()
        checks = report.get("checks", [])
        return PhotoResult(profile_id, bool(report.get("compliant")), data, checks, _first_failure(checks))


def _zh_reason(msg: str) -> str:
    if "no face" in msg:
        return "没有检测到人脸"
    if "faces found" in msg:
        return "照片中只能有一个人"
    return "无法生成证件照，请重拍"
