"""`kiosk profiles`, `check`, `make-photo`: document photos outside a session (kiosk.photo)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk.cli.common import add_command, add_json, emit, existing, output_path, stdout_closed
from kiosk.config import Config
from kiosk.durable import write_atomic
from kiosk.errors import InputError

if TYPE_CHECKING:  # the photo engine (numpy, OpenCV) loads only for the commands that use it
    from kiosk.photo.results import CheckReport

JPEG_SUFFIXES = (".jpg", ".jpeg")  # what every document profile asks for


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add_command(
        sub,
        "profiles",
        "the document photo profiles: size, dpi, file size, document",
        [common],
        cmd_profiles,
        "Versioned data: kiosk/photo/profiles.toml.",
    )
    add_json(p)

    p = add_command(
        sub,
        "check",
        "check a photo against a document profile (exit 0 compliant, 1 not, 2 unusable)",
        [common],
        cmd_check,
    )
    p.add_argument("image", help="photo file")
    p.add_argument("--profile", required=True, help="profile id (see `kiosk profiles`)")
    add_json(p, "JSON report")

    p = add_command(
        sub,
        "make-photo",
        "make the document photo from a capture and check the written file (exit as check)",
        [common],
        cmd_make_photo,
        "The output is a JPEG within the profile's size, dpi and file-size limits; OUT must end in "
        ".jpg or .jpeg.",
    )
    p.add_argument("image", help="captured image")
    p.add_argument("--profile", required=True, help="profile id (see `kiosk profiles`)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.jpg", help="JPEG file to write")
    p.add_argument("--background", help="background colour id allowed by the profile (default: its first)")
    add_json(p, "JSON report")


def cmd_profiles(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.photo.profiles import load_profiles

    profiles = load_profiles()
    if args.json:
        emit({"profiles": [p.to_json() for p in profiles.values()]})
    else:
        for p in profiles.values():
            kb = f"{p.file_kb[0]:g}-{p.file_kb[1]:g} KB"
            dpi = f"{p.dpi} dpi" if p.dpi else "no dpi"
            doc = f"{p.document_zh} / {p.document_en}"
            print(f"{p.id:16s} {p.size[0]}x{p.size[1]} {dpi:8s} {kb:10s} {doc} (v{p.version})")
    return 0


def cmd_check(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.photo.profiles import get_profile
    from kiosk.photo.service import PhotoTools

    profile = get_profile(args.profile)  # an unknown profile fails before the models load
    report = PhotoTools(cfg.vision).check(existing(args.image), profile)
    try:
        if args.json:
            emit(report.to_json())
        else:
            print(f"{args.image}: {'compliant' if report.compliant else 'NOT compliant'} with {profile.id}")
            _print_checks(report)
            sys.stdout.flush()
    except BrokenPipeError:  # nobody reads the report: the exit status still gives the verdict
        stdout_closed()
    return 0 if report.compliant else 1


def cmd_make_photo(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.photo.profiles import get_profile
    from kiosk.photo.service import PhotoTools

    output_path(args.output, "make-photo")  # before the models run: a name we can write
    if Path(args.output).suffix.lower() not in JPEG_SUFFIXES:  # never a JPEG behind a .png name
        raise InputError(f"make-photo: {args.output}: document photos are JPEG; name it .jpg or .jpeg")
    profile = get_profile(args.profile)
    photo = PhotoTools(cfg.vision).make_photo(existing(args.image), profile, args.background)
    try:
        write_atomic(Path(args.output), photo.jpeg, mode=0o644)  # never a half-written photo under its name
    except OSError as exc:
        raise InputError(f"make-photo: cannot write {args.output}: {exc.strerror or exc}") from None
    try:
        if args.json:
            emit(photo.to_json(output=args.output))
        else:
            enc = photo.encoding
            verdict = "compliant" if photo.compliant else "NOT compliant"
            jpeg = f"{len(photo.jpeg)} bytes, quality {enc.quality} {enc.subsampling}"
            print(f"{args.output}: {profile.id}, {jpeg}, {verdict}")
            _print_checks(photo.report)
            sys.stdout.flush()
    except BrokenPipeError:  # the photo is written; the exit status still gives the verdict
        stdout_closed()
    return 0 if photo.compliant else 1


def _print_checks(report: CheckReport) -> None:
    for c in report.checks:
        mark = "ok  " if c.passed else ("warn" if c.severity == "warning" else "FAIL")
        value = json.dumps(c.to_json()["value"], ensure_ascii=False)  # rounded as in the JSON
        print(f"  {mark} {c.id:24s} {value:>22s}  {c.message_en}")
