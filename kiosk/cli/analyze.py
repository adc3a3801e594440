"""`kiosk analyze`: the faces the on-device models see in an image or a video."""

from __future__ import annotations

import argparse
import itertools
from typing import Any

from kiosk.cli.common import add_command, emit, existing
from kiosk.config import Config
from kiosk.errors import InputError
from kiosk.samples import sample_path


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add_command(
        sub,
        "analyze",
        "faces, landmarks, pose and measures of an image or a video",
        [common],
        cmd_analyze,
        "Images: JPEG/PNG/WebP (EXIF orientation, grey, RGBA, 16-bit; huge images analysed on a "
        "downscaled copy, full-size coordinates).\nVideos: one line per frame, tracking pipeline.",
    )
    p.add_argument("file", nargs="?", help="image (JPEG/PNG/WebP...) or video file")
    p.add_argument("--sample", action="store_true", help="analyse the bundled sample photo")
    p.add_argument("--json", action="store_true", help="JSON output (one line per frame for a video)")
    p.add_argument("--landmarks", action="store_true", help="include the 468 landmarks as [x, y] pixels")


def cmd_analyze(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.vision.analyzer import FaceAnalyzer, analyze_loaded, load_for_analysis, video_frames
    from kiosk.vision.imageio import is_video
    from kiosk.vision.report import analysis_dict, face_dict

    if not args.sample and args.file is None:
        raise InputError("analyze: give FILE or --sample")
    path = str(sample_path()) if args.sample else existing(args.file)
    if is_video(path):
        frames = video_frames(path)
        first = next(frames)  # a video that cannot be read fails before the models load
        analyzer = FaceAnalyzer(cfg.vision)
        for i, frame in enumerate(itertools.chain([first], frames)):
            analysis = analyzer.track(frame)
            row = {"frame": i, "faces": [face_dict(f, args.landmarks) for f in analysis.faces]}
            if args.json:
                emit(row)
            else:
                print(_summary_line(f"frame {i}", analysis))
        return 0
    rgb, full_w, full_h = load_for_analysis(path, cfg.vision.analysis_max_side)
    analysis = analyze_loaded(FaceAnalyzer(cfg.vision), rgb, full_w, full_h)
    if args.json:
        emit(analysis_dict(analysis, args.landmarks, file=str(path)))
    else:
        print(_summary_line(str(path), analysis))
        for j, f in enumerate(analysis.faces):
            p = f.pose
            print(
                f"  face {j}: box {[round(v) for v in f.box]} score {f.score:.2f} "
                f"yaw {p.yaw:+.1f} pitch {p.pitch:+.1f} roll {p.roll:+.1f} "
                f"eyes {f.eye_openness[0]:.2f}/{f.eye_openness[1]:.2f} mouth {f.mouth_openness:.2f} "
                f"eye distance {f.inter_eye_distance:.0f}px"
            )
    return 0


def _summary_line(label: str, analysis: Any) -> str:
    return f"{label}: {analysis.width}x{analysis.height}, {len(analysis.faces)} face(s)"
