"""TFLite interpreter adapter: LiteRT (ai_edge_litert) first, tflite_runtime as fallback.

One small class so that the rest of the vision code never imports a runtime directly and a
Raspberry Pi image with only ``tflite_runtime`` works unchanged.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from kiosk.errors import ModelError

_RUNTIMES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter")


@contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """The runtime's C++ logger prints an INFO line per interpreter on fd 2; keep stderr for errors."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@lru_cache(maxsize=1)
def interpreter_class() -> type:
    """The first importable Interpreter class, or a one-line ModelError."""
    for name in _RUNTIMES:
        try:
            return importlib.import_module(name).Interpreter
        except ImportError:
            continue
    raise ModelError(
        "no TFLite runtime: install ai-edge-litert (pip install ai-edge-litert) "
        "or tflite-runtime on Raspberry Pi OS"
    )


def runtime_name() -> str:
    return interpreter_class().__module__.split(".")[0]


def models_dir() -> Path:
    """Where the .tflite files are: $KIOSK_MODELS_DIR, the source tree, or the installed share dir."""
    import sys

    candidates = []
    if os.environ.get("KIOSK_MODELS_DIR"):
        candidates.append(Path(os.environ["KIOSK_MODELS_DIR"]))
    candidates.append(Path(__file__).resolve().parents[2] / "models")
    candidates.append(Path(sys.prefix) / "share" / "kiosk" / "models")
    for c in candidates:
        if (c / "MANIFEST.json").exists():
            return c
    raise ModelError("model files not found (set KIOSK_MODELS_DIR to the folder holding MANIFEST.json)")


class Model:
    """One loaded .tflite model with named-by-position inputs and outputs."""

    def __init__(self, path: Path | str, num_threads: int = 2):
        path = Path(path)
        if not path.exists():
            raise ModelError(f"model file missing: {path}")
        cls = interpreter_class()
        try:
            with _native_stderr_silenced():
                self._interp = cls(model_path=str(path), num_threads=int(num_threads))
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot load model {path.name}: {exc}") from None
        self.name = path.name
        inp = self._interp.get_input_details()[0]
        self.input_index = inp["index"]
        self.input_shape = tuple(int(v) for v in inp["shape"])
        self.input_dtype = inp["dtype"]
        self._outputs = [d["index"] for d in self._interp.get_output_details()]
        self._lut: np.ndarray | None = None  # run_uint8's table for the last (scale, offset)
        self._lut_key: tuple[float, float] | None = None

    @property
    def input_size(self) -> tuple[int, int]:
        """(width, height) of the NHWC input."""
        return self.input_shape[2], self.input_shape[1]

    def __call__(self, tensor: np.ndarray) -> list[np.ndarray]:
        if tensor.ndim == 3:
            tensor = tensor[None]
        self._interp.set_tensor(self.input_index, np.ascontiguousarray(tensor, dtype=self.input_dtype))
        self._interp.invoke()
        return [self._interp.get_tensor(i) for i in self._outputs]

    def run_uint8(self, image: np.ndarray, scale: float, offset: float = 0.0) -> list[np.ndarray]:
        """Invoke on an HxWx3 uint8 image normalised as image * scale + offset.

        Writes straight into the interpreter's input buffer: no intermediate float copy on the
        per-frame path. The buffer view is dropped before invoke, as the runtime requires.
        The 256 normalised values come from a table (cv2.LUT): half the time of the float
        multiply, and the same float32 values (float32(x * scale), then + offset in float32).
        """
        key = (scale, offset)
        if self._lut_key != key:
            lut = (np.arange(256) * scale).astype(np.float32)
            if offset:
                lut += offset
            self._lut, self._lut_key = lut, key
        buf = self._interp.tensor(self.input_index)()
        if self.input_dtype == np.float32 and image.dtype == np.uint8 and image.flags.c_contiguous:
            cv2.LUT(image, self._lut, dst=buf[0])
        else:
            np.multiply(image, scale, out=buf[0], casting="unsafe")
            if offset:
                buf += offset
        del buf
        self._interp.invoke()
        return [self._interp.get_tensor(i) for i in self._outputs]
