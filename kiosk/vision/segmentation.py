"""Person segmentation with MediaPipe's general selfie model (256x256, sigmoid output).

Used by the photo module to replace the background and to find the top of the hair; the model
runs on the region that matters (the composed crop), so its 256 px grid covers the head finely.
The process holds one (``shared``): the photo engine and the crown reader (kiosk.vision.hair, on
live guidance's own thread) use the same interpreter, each run under the segmenter's lock.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from kiosk.vision.runtime import Model, models_dir

MODEL_FILE = "selfie_segmentation.tflite"


class PersonSegmenter:
    """Person probability per pixel; input RGB in [0, 1], output already a probability.

    Safe to call from several threads: a LiteRT interpreter must not run two invocations at once,
    so each run holds ``lock`` (one interpreter, ~9 MB, rather than one per thread).
    """

    def __init__(self, num_threads: int = 2):
        self.model = Model(models_dir() / MODEL_FILE, num_threads)
        self.lock = threading.Lock()

    def mask(self, rgb: np.ndarray) -> np.ndarray:
        """float32 HxW in [0, 1] at the image's size (the whole image is stretched to the model input)."""
        h, w = rgb.shape[:2]
        mw, mh = self.model.input_size
        small = cv2.resize(rgb, (mw, mh), interpolation=cv2.INTER_AREA if w > mw else cv2.INTER_LINEAR)
        x = small.astype(np.float32) * (1.0 / 255.0)
        with self.lock:  # the outputs are copies (get_tensor): only the run itself is guarded
            out = self.model(x)[0].reshape(mh, mw)
        prob = cv2.resize(out.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        return np.clip(prob, 0.0, 1.0)


_shared: PersonSegmenter | None = None
_shared_lock = threading.Lock()


def shared(num_threads: int = 2) -> PersonSegmenter:
    """The process's one person segmenter, made on first use (``num_threads`` counts then only):
    the photo engine's and the crown reader's, so the service loads the model once."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = PersonSegmenter(num_threads)
        return _shared
