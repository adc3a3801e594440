"""The fast paths of the tracked pipeline give the same numbers as the plain ones they replace.

Why: benchmarks/vision.py times the live pipeline with eye state; its shortcuts (a lookup table for
the model input, single-threaded interpreters of its own for tracking) must not change a result.
"""

from __future__ import annotations

import numpy as np
import pytest

from kiosk.config import VisionConfig
from kiosk.vision import FaceAnalyzer
from kiosk.vision.runtime import Model, models_dir


def _plain(model: Model, image: np.ndarray, scale: float, offset: float) -> list[np.ndarray]:
    """The model invoked on image * scale + offset computed by numpy (float64, then float32);
    then once on zeros, so that a table that wrote nowhere would not find this input in place."""
    x = (image * scale).astype(np.float32)
    if offset:
        x += offset
    out = [o.copy() for o in model(x)]
    model(np.zeros_like(x))
    return out


@pytest.mark.parametrize(
    ("name", "scale", "offset"),
    [("face_landmark.tflite", 1 / 255, 0.0), ("face_detection_short_range.tflite", 2 / 255, -1.0)],
)
def test_the_input_table_gives_the_models_the_same_input_as_the_float_arithmetic(name, scale, offset):
    model = Model(models_dir() / name, 1)
    w, h = model.input_size
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    image[0, :3] = [[0, 0, 0], [255, 255, 255], [1, 128, 254]]  # the ends of the table
    want = _plain(model, image, scale, offset)
    got = [o.copy() for o in model.run_uint8(image, scale, offset)]
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    # a strided view (a mirrored crop) takes the arithmetic path: the same numbers again
    mirrored = image[:, ::-1]
    want = _plain(model, mirrored, scale, offset)
    got = [o.copy() for o in model.run_uint8(mirrored, scale, offset)]
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    # a second image through the cached table is not the first one's answer
    other = [o.copy() for o in model.run_uint8(255 - image, scale, offset)]
    assert not all(np.array_equal(a, b) for a, b in zip(other, want, strict=True))


def test_tracking_with_its_own_interpreters_reads_the_eyes_as_the_still_path_does(sample_rgb):
    """num_threads=2: tracking uses single-threaded copies of the mesh and iris models; the same
    frame tracked gives the landmarks and eye contours of the still analysis of that frame's ROI."""
    two = FaceAnalyzer(VisionConfig(num_threads=2))
    one = FaceAnalyzer(VisionConfig(num_threads=1))
    mesh2, iris2 = two.tracking_models()
    assert mesh2 is not two.mesh and iris2 is not two.iris_model  # its own, not the stills' ones
    mesh1, iris1 = one.tracking_models()
    assert mesh1 is one.mesh and iris1 is one.iris_model  # one thread already: nothing to copy
    for _ in range(4):
        a, b = two.track(sample_rgb).faces[0], one.track(sample_rgb).faces[0]
        assert np.array_equal(a.landmarks, b.landmarks)
        assert np.array_equal(a.eye_contours, b.eye_contours) and a.eye_state == b.eye_state
    # and the still path (two-threaded interpreters) reads the same eyes on the same landmarks
    lm = two.track(sample_rgb).faces[0].landmarks
    still, tracked = two.iris_model.run(sample_rgb, lm), iris2.run(sample_rgb, lm)
    assert np.allclose(still.contours, tracked.contours, atol=1e-4)
    assert np.allclose(still.iris, tracked.iris, atol=1e-4)
