"""JSON-ready dictionaries of analysis results (the `kiosk analyze` output format)."""

from __future__ import annotations

from typing import Any

from kiosk.vision.types import Analysis, Face


def _r(v: float, nd: int = 2) -> float:
    return round(float(v), nd)


def face_dict(face: Face, landmarks: bool = False) -> dict[str, Any]:
    """Sides are as seen in the image: "left" is the subject's right eye."""
    out: dict[str, Any] = {
        "box": [_r(v, 1) for v in face.box],
        "score": _r(face.score, 4),
        "presence": _r(face.presence, 4),
        "pose": {"yaw": _r(face.pose.yaw), "pitch": _r(face.pose.pitch), "roll": _r(face.pose.roll)},
        "eye_openness": {"left": _r(face.eye_openness[0], 3), "right": _r(face.eye_openness[1], 3)},
        # from the eyelid contour when the iris model ran; null when only the mesh was measured
        "eye_state": {"left": face.eye_state[0], "right": face.eye_state[1]} if face.eye_state else None,
        # a spectacle frame's evidence; null where not measured (tracked frames, faces too small)
        "glasses": face.glasses.to_json() if face.glasses is not None else None,
        "mouth_openness": _r(face.mouth_openness, 3),
        "inter_eye_distance": _r(face.inter_eye_distance, 1),
        "eye_centers": [[_r(v, 1) for v in p] for p in face.eye_centers],
        "chin": [_r(v, 1) for v in face.chin],
        "crown": [_r(v, 1) for v in face.crown],
    }
    if face.detection is not None:
        out["detection"] = {
            "box": [_r(v, 1) for v in face.detection.box],
            "score": _r(face.detection.score, 4),
            "keypoints": [[_r(v, 1) for v in p] for p in face.detection.keypoints],
        }
    if face.gaze is not None:
        out["gaze"] = {"x": _r(face.gaze[0], 3), "y": _r(face.gaze[1], 3)}
    if landmarks:
        out["landmarks"] = [[_r(x), _r(y)] for x, y in face.landmarks[:, :2]]
    return out


def analysis_dict(analysis: Analysis, landmarks: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        **extra,
        "width": analysis.width,
        "height": analysis.height,
        "analysed_scale": _r(analysis.scale, 4),
        "faces": [face_dict(f, landmarks) for f in analysis.faces],
    }
