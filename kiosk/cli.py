"""The `kiosk` command: argument parsing and output only; the work lives in the packages.

Every command honours --config/KIOSK_CONFIG and --state-dir/KIOSK_STATE_DIR. Expected failures
print one line on stderr and exit non-zero (2 for unusable input); never a traceback.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from kiosk import __version__
from kiosk.config import Config, load_config
from kiosk.errors import KioskError

Handler = Callable[[argparse.Namespace, Config], int]


def _emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def sample_path(name: str = "astronaut.jpg") -> Path:
    return Path(str(resources.files("kiosk.samples").joinpath(name)))


# --- analyze -----------------------------------------------------------------------------------


def cmd_analyze(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.vision.analyzer import FaceAnalyzer, analyze_loaded, load_for_analysis, video_frames
    from kiosk.vision.imageio import is_video
    from kiosk.vision.report import analysis_dict, face_dict

    path = sample_path() if args.sample else args.file
    if path is None:
        raise KioskError("analyze: give FILE or --sample")
    if not Path(path).exists():
        from kiosk.errors import InputError

        raise InputError(f"{path}: no such file")
    if is_video(path):
        frames = video_frames(path)
        first = next(frames)  # a video that cannot be read fails before the models load
        analyzer = FaceAnalyzer(cfg.vision)
        for i, frame in enumerate(itertools.chain([first], frames)):
            analysis = analyzer.track(frame)
            row = {"frame": i, "faces": [face_dict(f, args.landmarks) for f in analysis.faces]}
            if args.json:
                _emit(row)
            else:
                print(_summary_line(f"frame {i}", analysis))
        return 0
    rgb, full_w, full_h = load_for_analysis(path, cfg.vision.analysis_max_side)
    analysis = analyze_loaded(FaceAnalyzer(cfg.vision), rgb, full_w, full_h)
    if args.json:
        _emit(analysis_dict(analysis, args.landmarks, file=str(path)))
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


# --- document photos: profiles, check, make-photo ------------------------------------------------


def cmd_profiles(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.photo.profiles import load_profiles

    profiles = load_profiles()
    if args.json:
        _emit({"profiles": [p.to_json() for p in profiles.values()]})
    else:
        for p in profiles.values():
            kb = f"{p.file_kb[0]:g}-{p.file_kb[1]:g} KB"
            dpi = f"{p.dpi} dpi" if p.dpi else "no dpi"
            doc = f"{p.document_zh} / {p.document_en}"
            print(f"{p.id:16s} {p.size[0]}x{p.size[1]} {dpi:8s} {kb:10s} {doc} (v{p.version})")
    return 0


def _print_checks(report: dict) -> None:
    for c in report["checks"]:
        mark = "ok  " if c["passed"] else ("warn" if c["severity"] == "warning" else "FAIL")
        print(f"  {mark} {c['id']:24s} {json.dumps(c['value'], ensure_ascii=False):>22s}  {c['message_en']}")


def _existing(path: str) -> str:
    if not Path(path).is_file():
        from kiosk.errors import InputError

        raise InputError(f"{path}: no such file")
    return path


def cmd_check(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.photo.profiles import get_profile
    from kiosk.photo.service import PhotoTools

    profile = get_profile(args.profile)  # an unknown profile fails before the models load
    report = PhotoTools(cfg.vision).check(_existing(args.image), profile)
    if args.json:
        _emit(report)
    else:
        print(f"{args.image}: {'compliant' if report['compliant'] else 'NOT compliant'} with {profile.id}")
        _print_checks(report)
    return 0 if report["compliant"] else 1


def cmd_make_photo(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.photo.profiles import get_profile
    from kiosk.photo.service import PhotoTools

    profile = get_profile(args.profile)
    report = PhotoTools(cfg.vision).make_photo(_existing(args.image), profile, args.output, args.background)
    if args.json:
        _emit(report)
    else:
        enc = report["encoding"]
        verdict = "compliant" if report["compliant"] else "NOT compliant"
        jpeg = f"{enc['bytes']} bytes, quality {enc['quality']} {enc['subsampling']}"
        print(f"{args.output}: {profile.id}, {jpeg}, {verdict}")
        _print_checks(report)
    return 0 if report["compliant"] else 1


# --- the parser ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="configuration file (TOML); default $KIOSK_CONFIG or /etc/kiosk")
    common.add_argument("--state-dir", help="store, photos and queue; default $KIOSK_STATE_DIR")

    parser = argparse.ArgumentParser(prog="kiosk", description=__doc__.splitlines()[0], parents=[common])
    parser.add_argument("--version", action="version", version=f"kiosk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "analyze", parents=[common], help="faces, landmarks, pose and measures of an image or video"
    )
    p.add_argument("file", nargs="?", help="image (JPEG/PNG/WebP...) or video file")
    p.add_argument("--sample", action="store_true", help="analyse the bundled sample photo")
    p.add_argument("--json", action="store_true", help="JSON output (one line per frame for a video)")
    p.add_argument("--landmarks", action="store_true", help="include the 468 landmarks as [x, y] pixels")
    p.set_defaults(handler=cmd_analyze)

    p = sub.add_parser("profiles", parents=[common], help="the document photo profiles")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(handler=cmd_profiles)

    p = sub.add_parser(
        "check",
        parents=[common],
        help="check a photo against a document profile (exit 0 compliant, 1 not, 2 unusable)",
    )
    p.add_argument("image", help="photo file")
    p.add_argument("--profile", required=True, help="profile id (see `kiosk profiles`)")
    p.add_argument("--json", action="store_true", help="JSON report")
    p.set_defaults(handler=cmd_check)

    p = sub.add_parser(
        "make-photo",
        parents=[common],
        help="make the document photo from a capture and report its checks (exit as check)",
    )
    p.add_argument("image", help="captured image")
    p.add_argument("--profile", required=True, help="profile id (see `kiosk profiles`)")
    p.add_argument("-o", "--output", required=True, help="JPEG file to write")
    p.add_argument("--background", help="background colour id allowed by the profile (default: its first)")
    p.add_argument("--json", action="store_true", help="JSON report")
    p.set_defaults(handler=cmd_make_photo)

    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        cfg = load_config(args.config, args.state_dir)
        return args.handler(args, cfg)
    except KioskError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
