"""The whole simulated session for every document, and guidance that is at least as strict as the
final check: sharpness on one scale, no still refused after "很好，请保持", a cap never gets a number.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from kiosk.photo import load_profiles
from kiosk.photo import measures as M
from kiosk.samples import sample_path
from kiosk.sim.scene import Scene, SimCamera, SimSubject
from kiosk.vision.imageio import load_image

REAL = Path(__file__).parent / "fixtures" / "real"


def test_the_same_still_reads_the_same_sharpness_in_every_profiles_photo(tools):
    """One scale: the value is the scene's, not the output size's (round 1: 0.195 to 0.24)."""
    levels = {"left": 0.3, "right": 0.3, "fill": 0.3}
    cam = SimCamera.from_image(load_image(sample_path()), analyzer=tools.analyzer, levels=lambda: levels)
    cam.subject = SimSubject()
    cam.subject.arrive(Scene(mouth=0.0, tilt=0.0))
    still = cam.still()
    values = {p: tools.make(still, p).report.get("sharpness").value for p in load_profiles()}
    # what is left is composing and JPEG at each profile's size and KB range: about +-0.012
    assert max(values.values()) - min(values.values()) <= 0.03, values
    assert min(values.values()) >= load_profiles()["driving_licence"].thresholds["sharpness_min"]
    face = tools.analyzer.analyze(cam.frame().rgb).faces[0]
    live = M.sharpness_at_scale(cam.frame().rgb, face.landmarks, face.eye_centers)
    assert live >= min(values.values())  # the live frame reads at least what the photo will


def _demo(tmp_path: Path, profile: str, config: Path | None = None) -> dict:
    cmd = [sys.executable, "-m", "kiosk.cli"]
    if config is not None:
        cmd += ["--config", str(config)]
    cmd += [
        "--state-dir",
        str(tmp_path / "state"),
        "demo",
        "--profile",
        profile,
        "--out",
        str(tmp_path / "out"),
        "--json",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    return json.loads(proc.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("profile", sorted(load_profiles()))
def test_the_demo_is_compliant_for_every_document_with_no_still_refused(tmp_path, profile):
    out = _demo(tmp_path, profile)
    assert out["outcome"] == "done" and out["compliant"] is True and out["number"]
    states = [s["state"] for s in out["states"]]
    assert states.count("capture") == 1  # the first still is accepted: guidance never said ready in vain
    assert states[states.index("capture") + 1] == "review"


@pytest.mark.slow
def test_a_capped_citizen_is_told_to_take_the_hat_off_and_never_gets_a_number(tmp_path):
    config = tmp_path / "kiosk.toml"
    config.write_text(f'[hardware]\nsim_face = "{REAL / "head_covering" / "colorful.jpg"}"\n', "utf-8")
    out = _demo(tmp_path, "id_card", config)
    assert out["outcome"] == "timeout" and out["number"] is None and out["compliant"] is False
    prompts = Counter(p["id"] for p in out["prompts"])
    assert prompts["remove_hat"] >= 1
    assert any(p["zh"] == "请摘下帽子" for p in out["prompts"])
    assert "capture" not in [s["state"] for s in out["states"]]  # no still is taken with the hat on
