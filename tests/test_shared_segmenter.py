"""One person segmenter per process: the photo engine's is the crown reader's (kiosk.vision.hair),
run under its lock from live guidance's crown thread and the main loop; the hair model loads only
when a crown is read. (A second segmenter and an eagerly loaded hair model cost ~9 and ~29 MB.)"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from kiosk.vision import hair
from kiosk.vision.analyzer import analyze_file

REAL = Path(__file__).parent / "fixtures" / "real"


def _beanie(analyzer) -> tuple[np.ndarray, np.ndarray]:
    """A real photo whose crown the hair model reads as a hat (tests/test_hair_covering.py)."""
    analysis, rgb = analyze_file(analyzer, REAL / "head_covering" / "beanie.jpg")
    face = max(analysis.faces, key=lambda f: f.inter_eye_distance)
    lm = face.landmarks.copy()
    lm[:, :2] *= rgb.shape[1] / analysis.width
    return rgb, lm


def test_the_crown_reader_runs_the_photo_engines_person_segmenter(tools, monkeypatch):
    from kiosk.photo.service import PhotoTools

    assert hair.person_segmenter() is tools.segmenter
    assert PhotoTools(analyzer=tools.analyzer).segmenter is tools.segmenter  # a second engine too
    rgb, lm = _beanie(tools.analyzer)
    runs = []
    real_mask = tools.segmenter.mask
    monkeypatch.setattr(tools.segmenter, "mask", lambda x: runs.append(x.shape) or real_mask(x))
    crown = hair.crown_covering(rgb, lm)
    assert crown is not None and crown.covered  # the verdict of tests/test_hair_covering.py
    assert runs == [(hair.SIZE, hair.SIZE, 3)]


def test_the_hair_model_loads_at_the_first_crown_reading_only(tools, monkeypatch):
    made = []

    class Counted(hair.HairSegmenter):
        def __init__(self, num_threads: int = 2):
            made.append(num_threads)
            super().__init__(num_threads)

    monkeypatch.setattr(hair, "HairSegmenter", Counted)
    hair._hair_model.cache_clear()
    try:
        from kiosk.photo.service import PhotoTools

        PhotoTools(analyzer=tools.analyzer)
        assert made == []  # building the engine does not load it
        rgb, lm = _beanie(tools.analyzer)
        for _ in range(2):
            hair.crown_covering(rgb, lm)
        assert len(made) == 1
    finally:
        hair._hair_model.cache_clear()


def test_the_shared_segmenter_runs_one_invocation_at_a_time(tools, monkeypatch):
    """Four threads at once get the serial results, and the interpreter never runs two invocations."""
    seg = tools.segmenter
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (300, 240, 3), dtype=np.uint8) for _ in range(4)]
    serial = [seg.mask(im) for im in images]
    inside, most = [0], [0]
    model = seg.model

    class Watched:
        input_size = model.input_size

        def __call__(self, x):
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            time.sleep(0.01)  # widen the window in which an unguarded second call would enter
            try:
                return model(x)
            finally:
                inside[0] -= 1

    monkeypatch.setattr(seg, "model", Watched())
    out: dict[int, list[np.ndarray]] = {}

    def work(i: int) -> None:
        out[i] = [seg.mask(images[(i + k) % 4]) for k in range(3)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1
    for i, masks in out.items():
        for k, m in enumerate(masks):
            np.testing.assert_array_equal(m, serial[(i + k) % 4])
