"""head_covering's crown reading with MediaPipe's hair model, on real photos (tests/fixtures/real/).

The forehead's colour misses hats worn high; the crown reading finds them. Each case here is one
that the colour rule alone gets wrong or that sits nearest the limit, in both directions: the
whole-set rates are asserted in tests/test_real_photos.py and reported in the README.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from kiosk.vision.accessories import head_covering
from kiosk.vision.analyzer import analyze_file
from kiosk.vision.hair import MODEL_FILE, SIZE, HairSegmenter, crown_covering
from kiosk.vision.hair import rules as crown_rules
from kiosk.vision.runtime import models_dir

REAL = Path(__file__).parent / "fixtures" / "real"
LABELS = tomllib.loads((REAL / "labels.toml").read_text("utf-8"))["photos"]


def _face(analyzer, name: str):
    e = LABELS[name]
    analysis, rgb = analyze_file(analyzer, REAL / e["category"] / f"{name}.jpg")
    face = max(analysis.faces, key=lambda f: f.inter_eye_distance)
    k = rgb.shape[1] / analysis.width  # the analysed copy's pixels per full-size pixel
    lm = face.landmarks.copy()
    lm[:, :2] *= k
    return rgb, lm, face.eye_centers * k


def test_the_bundled_hair_model_is_the_manifests_and_runs_in_plain_litert():
    entry = next(
        e
        for e in json.loads((models_dir() / "MANIFEST.json").read_text())["models"]
        if e["file"] == MODEL_FILE
    )
    data = (models_dir() / MODEL_FILE).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"] and entry["licence"] == "Apache-2.0"
    assert entry["repo"] == "google/mediapipe" and len(entry["commit"]) == 40
    seg = HairSegmenter(num_threads=1)
    assert seg.model.input_shape == (1, SIZE, SIZE, 4)
    p = seg.probability(np.full((SIZE, SIZE, 3), 128, np.uint8))
    assert p.shape == (SIZE, SIZE) and 0.0 <= float(p.min()) <= float(p.max()) <= 1.0


@pytest.mark.parametrize("name", ["beanie", "balaclava", "portrait", "duty_uniform", "anger"])
def test_hats_worn_high_that_the_forehead_colour_misses_are_found_by_the_crown(analyzer, name):
    """A beanie, a balaclava, a top hat, a peaked cap above the brows, a hood (anger.jpg)."""
    rgb, lm, eyes = _face(analyzer, name)
    colour_only = head_covering(rgb, lm, eyes)
    assert colour_only is not None and not colour_only.covered
    hc = head_covering(rgb, lm, eyes, crown=True)
    assert hc is not None and hc.covered and hc.crown is not None
    assert hc.crown.crown >= crown_rules().covered_min and not hc.forehead_covered


@pytest.mark.parametrize("name", ["deepface_img20", "warp_white_man", "clapton_1", "lennon_2", "frowing"])
def test_bare_heads_nearest_the_limit_and_fringes_pass(analyzer, name):
    """A shiny bald crown and thin grey hair read highest of the bare heads; fringes are hair."""
    rgb, lm, eyes = _face(analyzer, name)
    hc = head_covering(rgb, lm, eyes, crown=True)
    assert hc is not None and not hc.covered
    assert hc.crown is not None and hc.crown.crown < crown_rules().covered_min


def test_a_headscarf_wrapping_a_visible_face_passes_though_its_crown_is_covered(analyzer):
    rgb, lm, eyes = _face(analyzer, "shawl")
    hc = head_covering(rgb, lm, eyes, crown=True)
    assert hc is not None and not hc.covered
    assert hc.crown is not None and hc.crown.covered and hc.crown.wrap >= crown_rules().wrap_min


def test_a_head_outside_the_image_is_not_measured(analyzer):
    rgb, lm, _ = _face(analyzer, "beanie")
    far = lm.copy()
    far[:, 1] -= 10 * rgb.shape[0]  # the whole head far above the picture
    assert crown_covering(rgb, far) is None


def test_live_guidance_tells_a_beanie_that_only_the_crown_reading_sees(analyzer):
    from kiosk.capture.live import LiveLoop
    from kiosk.capture.rules import load_rules
    from kiosk.photo.profiles import get_profile

    rgb = analyze_file(analyzer, REAL / "head_covering" / "beanie.jpg")[1]
    live = LiveLoop(analyzer, load_rules())
    live.start(get_profile("id_card").thresholds)
    live.process(rgb, 0.0)  # a new face: the crown reading starts on its own thread
    live.settle()
    out = [live.process(rgb, i / 30) for i in range(1, 12)]
    assert all("head_covering" in g.failing for g in out[3:]) and not out[-1].ready
    assert live.crown_hat is True


def test_a_crown_reading_of_the_last_session_is_not_the_next_citizens(analyzer):
    """A reading still running when a session ends belongs to that citizen, not to the next one."""
    from kiosk.capture.live import LiveLoop
    from kiosk.capture.rules import load_rules
    from kiosk.photo.profiles import get_profile

    hat = analyze_file(analyzer, REAL / "head_covering" / "beanie.jpg")[1]
    bare = analyze_file(analyzer, REAL / "eyes_open" / "rose_leslie_2.jpg")[1]
    thresholds = get_profile("id_card").thresholds
    live = LiveLoop(analyzer, load_rules())
    live.start(thresholds)
    live.process(hat, 0.0)  # the beanie's crown reading starts, and the session ends under it
    live.start(thresholds)
    live.settle()  # the old reading finishes inside the new session
    g = live.process(bare, 0.0)
    assert live.crown_hat is not True and "head_covering" not in g.failing
    live.settle()
    for i in range(1, 4):  # the next look at the head takes the new citizen's own reading
        live.process(bare, i / 30)
    assert live.crown_hat is False


PHONE = Path(__file__).parent / "fixtures" / "phone"
PHONE_HATS = ("paddle_cap_sea", "u2_fur_hat")  # their labels: a baseball cap, a fur hat; the rest are bare


@pytest.mark.slow
def test_on_the_phone_photos_no_threshold_was_set_on_bare_heads_pass_and_both_hats_fail(analyzer):
    names = sorted(p.stem for p in PHONE.glob("*.jpg"))
    assert len(names) >= 30 and set(PHONE_HATS) <= set(names)
    verdicts = {}
    for name in names:
        analysis, rgb = analyze_file(analyzer, PHONE / f"{name}.jpg")
        face = max(analysis.faces, key=lambda f: f.inter_eye_distance)
        k = rgb.shape[1] / analysis.width
        lm = face.landmarks.copy()
        lm[:, :2] *= k
        hc = head_covering(rgb, lm, face.eye_centers * k, crown=True)
        verdicts[name] = None if hc is None else hc.covered
    assert all(verdicts[n] for n in PHONE_HATS)
    assert [n for n in names if n not in PHONE_HATS and verdicts[n] is not False] == []
