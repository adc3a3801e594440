"""`kiosk demo`: a whole session on simulated hardware, to the photo and the printed slip (kiosk.demo)."""

from __future__ import annotations

import argparse
from pathlib import Path

from kiosk.cli.common import add_command
from kiosk.config import Config
from kiosk.demo import LIMIT_S


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add_command(
        sub,
        "demo",
        "a whole simulated session: guidance, the document photo, its image number and the slip",
        [common],
        cmd_demo,
        "The citizen is the bundled sample face (or [hardware] sim_face): badly posed and lit from one side, "
        f"guided by the prompts; the demo fails when no photo is accepted within {LIMIT_S:g} simulated "
        "seconds. Writes OUT/photo.jpg, OUT/slip.png and OUT/slip.escpos.\n"
        "Exit 0: a compliant photo; 1: the session failed; 2: bad input.",
    )
    p.add_argument("--out", help="folder for the photo, slip and its store (default: STATE_DIR/demo)")
    p.add_argument("--profile", help="document profile id (default: config session.default_profile)")
    p.add_argument("--city", help="city id for the receipt (default: the document's first city)")
    p.add_argument("--json", action="store_true", help="one JSON object, also on failure: prompts, photo...")
    p.add_argument(
        "--voice",
        action="store_true",
        help="speak as the terminal does; what the citizen heard goes to OUT/voice/*.wav",
    )
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="the citizen's language (default zh)")
    p.add_argument("--large-text", action="store_true", help="the citizen turns on large text, slow speech")
    p.add_argument(
        "--returning",
        metavar="SLIP.png",
        help="a returning citizen scans this slip: its review, and after a rejection the free retake",
    )


def cmd_demo(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.demo import demo_command

    out = Path(args.out) if args.out else cfg.state_dir / "demo"
    return demo_command(
        cfg, out, profile=args.profile, city=args.city, as_json=args.json, voice=args.voice,
        lang=args.lang, large_text=args.large_text,
        returning=Path(args.returning) if args.returning else None,
    )
