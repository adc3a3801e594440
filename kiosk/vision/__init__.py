"""On-device face analysis: MediaPipe's face models on a plain TFLite interpreter.

Knows nothing about documents, GPIO or the UI.
"""

from kiosk.vision.analyzer import FaceAnalyzer, describe, rescale
from kiosk.vision.types import Analysis, Detection, Face, Pose

__all__ = ["Analysis", "Detection", "Face", "FaceAnalyzer", "Pose", "describe", "rescale"]
