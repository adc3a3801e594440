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
from pathlib import Path
from typing import Any

from kiosk import __version__
from kiosk.config import Config, load_config
from kiosk.errors import InputError, KioskError
from kiosk.samples import sample_path

Handler = Callable[[argparse.Namespace, Config], int]


def _emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


# --- analyze -----------------------------------------------------------------------------------


def cmd_analyze(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.vision.analyzer import FaceAnalyzer, analyze_loaded, load_for_analysis, video_frames
    from kiosk.vision.imageio import is_video
    from kiosk.vision.report import analysis_dict, face_dict

    if not args.sample and args.file is None:
        raise KioskError("analyze: give FILE or --sample")
    path = str(sample_path()) if args.sample else _existing(args.file)
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


# --- the serial maintenance console ------------------------------------------------------------


def cmd_console(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.console.pin import hash_pin

    if args.hash_pin:
        import getpass

        pin = getpass.getpass("new PIN: ") if sys.stdin.isatty() else sys.stdin.readline().strip()
        print(f'[console]\npin_hash = "{hash_pin(pin)}"')
        return 0
    from kiosk.console.shell import run_console, with_baud

    ccfg = with_baud(cfg.console, args.baud) if args.baud else cfg.console

    def log(msg: str) -> None:
        print(f"kiosk console: {msg}", file=sys.stderr, flush=True)

    def reload() -> Any:
        return load_config(args.config, args.state_dir).console

    run_console(ccfg, cfg.state_dir, port=args.port, log=log, reload=reload, handle_signals=True)
    return 0


# --- update: fleet releases (kiosk.fleet) --------------------------------------------------------


def _updater(args: argparse.Namespace, cfg: Config):
    from kiosk.fleet.manage import make_updater

    return make_updater(
        cfg.fleet,
        cfg.state_dir,
        root=args.root,
        restart_command=args.restart_command,
        ready_timeout_s=args.ready_timeout,
        stable_s=args.stable,
        give_up_after_s=args.give_up_after,
    )


def _report_outcomes(args: argparse.Namespace, outcomes: list, extra: dict | None = None) -> int:
    if args.json:
        rows = [{"status": o.status, "version": o.version, "message": o.message} for o in outcomes]
        _emit({"outcomes": rows, **(extra or {})})
    else:
        for o in outcomes:
            print(f"{o.status}: {o.message}")
    return outcomes[-1].exit_code if outcomes else 0


def cmd_update_status(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.fleet import manage

    upd = _updater(args, cfg)
    outcomes = manage.recover(upd)
    st = upd.status()
    if args.json:
        _emit({**st, "recovered": [o.message for o in outcomes]})
        return 0
    for o in outcomes:
        print(f"{o.status}: {o.message}")
    print(f"current {st['current'] or '-'}  committed {st['committed'] or '-'}", end="")
    print(f"  previous {st['previous'] or '-'}  highest {st['highest'] or '-'}")
    print(f"phase {st['phase']}" + (f" ({st['pending']})" if st["pending"] else ""))
    for version, why in st["failed"].items():
        print(f"failed {version}: {why}")
    if st["last"]:
        print(f"last: {st['last']['status']}: {st['last']['message']}")
    return 0


def cmd_update_apply(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.fleet import manage

    return _report_outcomes(args, manage.apply(_updater(args, cfg), args.bundle))


def cmd_update_rollback(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.fleet import manage

    return _report_outcomes(args, manage.rollback(_updater(args, cfg)))


def cmd_update_recover(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.fleet import manage

    return _report_outcomes(args, manage.recover(_updater(args, cfg)))


def cmd_update_check(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.fleet import manage
    from kiosk.fleet.updater import Outcome

    url = args.repo or cfg.fleet.repository_url
    outcomes, available = manage.check(_updater(args, cfg), url, args.install)
    if available and not args.install:
        outcomes.append(Outcome("available", available.version, f"release {available.version} is available"))
    if not outcomes:
        if args.json:
            _emit({"outcomes": []})
        else:
            print("up-to-date: no newer release")
        return 0
    return _report_outcomes(args, outcomes)


def cmd_update_build(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.fleet import manage
    from kiosk.fleet.bundle import default_arch

    arch = args.arch or default_arch()
    m = manage.build_from_checkout(args.version, args.key, args.output, arch, args.site)
    if args.publish:
        manage.publish(args.publish, args.keys_dir, args.output)
    if args.json:
        _emit(
            {
                "bundle": args.output,
                "version": m.version,
                "arch": m.arch,
                "files": len(m.files),
                "bytes": m.total_size,
                "published": args.publish,
            }
        )
    else:
        print(f"{args.output}: kiosk {m.version} for {m.arch}, {len(m.files)} files, {m.total_size} bytes")
    return 0


def cmd_update_init_repo(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.fleet import manage

    root_json = manage.init_repository(args.repo, args.keys_dir, args.new_keys)
    print(f"repository {args.repo} ready; provision terminals with {root_json}")
    return 0


def cmd_update_provision(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.fleet import manage

    print(f"trusted root installed: {manage.provision(_updater(args, cfg), args.trusted_root)}")
    return 0


# --- receipts, the store and the platform (kiosk.receipt, kiosk.store) --------------------------


def _save_virtual_slip(printer: Any, png: str | None) -> None:
    from kiosk.sim.printer import VirtualPrinter

    if png and isinstance(printer.device, VirtualPrinter) and printer.device.slips():
        Path(png).write_bytes(printer.device.png())


def cmd_receipt_issue(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.receipt.issue import issue_receipt
    from kiosk.receipt.wiring import authority_from_config, open_store, printer_from_config

    try:
        photo = Path(args.photo).read_bytes()
    except OSError as exc:
        raise InputError(f"{args.photo}: {exc.strerror or exc}") from None
    authority = authority_from_config(cfg)
    authority.ready()
    printer = printer_from_config(cfg)
    with open_store(cfg) as store:
        r = issue_receipt(
            store, authority, printer, args.profile, args.city, photo, paper_mm=cfg.receipt.paper_mm
        )
    _save_virtual_slip(printer, args.png)
    if args.json:
        _emit(r.to_json())
    else:
        print(r.number if r.printed else f"{r.number} (not printed: {r.fault}; {r.message_en})")
    return 0


def cmd_receipt_list(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.receipt.wiring import open_store

    with open_store(cfg) as store:
        rows = []
        for rec in store.numbers(args.limit):
            jobs = store.print_jobs(rec.number)
            rows.append(
                {
                    **rec.to_json(),
                    "printed": any(j.state == "printed" for j in jobs),
                    "queued": sum(j.state == "queued" for j in jobs),
                }
            )
    if args.json:
        _emit({"receipts": rows})
    else:
        for r in rows:
            state = "printed" if r["printed"] else "NOT PRINTED"
            print(f"{r['number']}  {r['profile']:<16} {r['city']:<10} {state}")
    return 0


def cmd_receipt_reprint(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.receipt.issue import fault_message, reprint
    from kiosk.receipt.numbers import parse
    from kiosk.receipt.wiring import authority_from_config, open_store, printer_from_config

    number = parse(args.number).number
    printer = printer_from_config(cfg)
    with open_store(cfg) as store:
        fault = reprint(store, printer, number, authority_from_config(cfg).tz, paper_mm=cfg.receipt.paper_mm)
    _save_virtual_slip(printer, args.png)
    if fault:
        hint = fault_message(fault, "technician")[1]
        raise KioskError(f"reprint of {number} queued, printer fault {fault}: {hint}")
    print(f"{number} reprinted")
    return 0


def cmd_receipt_verify(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.receipt.numbers import parse
    from kiosk.receipt.wiring import open_store

    parsed = parse(args.number)
    with open_store(cfg) as store:
        known = store.number(parsed.number) is not None
    if args.json:
        _emit({**parsed.to_json(), "in_store": known})
    else:
        print(
            f"{parsed.number}: valid {parsed.profile_id} number, region {parsed.region}, station "
            f"{parsed.station}, {parsed.day}, #{parsed.seq}{'' if known else ' (not issued here)'}"
        )
    return 0


def cmd_receipt_render(args: argparse.Namespace, cfg: Config) -> int:
    from zoneinfo import ZoneInfo

    from kiosk.receipt.issue import slip_bytes
    from kiosk.receipt.numbers import parse
    from kiosk.receipt.wiring import open_store
    from kiosk.sim.printer import render

    number = parse(args.number).number
    paper = args.paper or cfg.receipt.paper_mm
    with open_store(cfg) as store:
        data = slip_bytes(store, number, ZoneInfo(cfg.receipt.timezone), reprint=args.reprint, paper_mm=paper)
    render(data, paper)[0].save(args.output, format="PNG")
    if args.escpos:
        Path(args.escpos).write_bytes(data)
    print(args.output)
    return 0


def cmd_platform_serve(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.sim.platform import Faults, serve

    faults = Faults(
        delay_s=args.delay, fail_rate=args.fail_rate, malformed_rate=args.malformed_rate, review=args.review
    )
    serve(args.host, args.port, Path(args.data) if args.data else cfg.state_dir / "platform", faults)
    return 0


def cmd_store_purge(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.receipt.wiring import open_store

    days = cfg.receipt.retention_days if args.days is None else args.days
    with open_store(cfg) as store:
        out = store.purge(days, actor=args.actor)
    if args.json:
        _emit({**out, "retention_days": days})
    else:
        print(f"deleted {out['photos_deleted']} photo(s) and {out['orphans_deleted']} orphan file(s)")
    return 0


# --- the capture station: demo and the service (kiosk.demo, kiosk.service) ----------------------


def cmd_demo(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.demo import run_demo

    out = Path(args.out) if args.out else cfg.state_dir / "demo"

    def progress(line: str) -> None:
        if not args.json:
            print(line, flush=True)

    if not args.json:
        doc = args.profile or cfg.session.default_profile
        print(f"kiosk demo: a simulated session on {sample_path().name}, document {doc}")
    result = run_demo(cfg, out, profile=args.profile, city=args.city, progress=progress)
    if args.json:
        _emit(result.to_json())
    else:
        verdict = "compliant" if result.compliant else "NOT compliant"
        print(
            f"photo: {result.photo} ({verdict}); {len(result.prompts)} prompts, "
            f"{result.sim_seconds:.1f} s simulated in {result.wall_seconds:.1f} s"
        )
        printed = (result.handover or {}).get("printed")
        print(f"image number: {result.number} ({result.city}){'' if printed else ', slip NOT printed'}")
        print(f"slip: {result.slip} (ESC/POS bytes: {result.escpos})")
    return 0 if result.compliant else 1


def cmd_run(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.service import run_service

    return run_service(cfg, sim=args.sim, port=args.port)


# --- the parser ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    # SUPPRESS: a subcommand's copy of these options must not reset what was given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        help="configuration file (TOML); default $KIOSK_CONFIG or /etc/kiosk",
    )
    common.add_argument(
        "--state-dir", default=argparse.SUPPRESS, help="store, photos and queue; default $KIOSK_STATE_DIR"
    )

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

    p = sub.add_parser("console", parents=[common], help="the serial maintenance console on a serial line")
    p.add_argument("--port", help="serial device (default: console.port of the configuration)")
    p.add_argument("--baud", type=int, help="line speed (default: console.baud; always 8N1)")
    p.add_argument("--hash-pin", action="store_true", help="read a new PIN, print its config lines, and exit")
    p.set_defaults(handler=cmd_console)

    upd_common = argparse.ArgumentParser(add_help=False, parents=[common])
    upd_common.add_argument("--root", help="release root (releases/, current, state/); default fleet.root")
    upd_common.add_argument("--restart-command", help="run this as the service instead of systemctl ({root})")
    upd_common.add_argument("--ready-timeout", type=float, help="seconds from restart to READY=1")
    upd_common.add_argument("--stable", type=float, help="seconds the new release must run before commit")
    upd_common.add_argument("--give-up-after", type=float, help="seconds of deferral before giving up")
    upd_common.add_argument("--json", action="store_true", help="JSON output")
    p = sub.add_parser("update", parents=[common], help="fleet updates: status, check, apply, rollback")
    usub = p.add_subparsers(dest="update_command", metavar="ACTION", required=True)
    u = usub.add_parser("status", parents=[upd_common], help="releases, state, last result")
    u.set_defaults(handler=cmd_update_status)
    u = usub.add_parser("check", parents=[upd_common], help="ask the fleet repository (TUF) for a release")
    u.add_argument("--repo", help="repository URL (https:// or file://); default fleet.repository_url")
    u.add_argument("--install", action="store_true", help="download and apply a newer release")
    u.set_defaults(handler=cmd_update_check)
    u = usub.add_parser("apply", parents=[upd_common], help="install a bundle file (e.g. from a USB stick)")
    u.add_argument("bundle", help="bundle file (.kbundle)")
    u.set_defaults(handler=cmd_update_apply)
    u = usub.add_parser("rollback", parents=[upd_common], help="go back to the previous release")
    u.set_defaults(handler=cmd_update_rollback)
    u = usub.add_parser("recover", parents=[upd_common], help="finish or undo an interrupted update")
    u.set_defaults(handler=cmd_update_recover)
    u = usub.add_parser("build", parents=[upd_common], help="make and sign a bundle from the working tree")
    u.add_argument("--version", required=True, help="release version, e.g. 1.4.2")
    u.add_argument("--key", action="append", required=True, help="targets signing key (PEM); repeatable")
    u.add_argument("-o", "--output", required=True, help="bundle file to write")
    u.add_argument("--arch", help="terminal architecture (default: this machine's)")
    u.add_argument("--site", help="directory of locked dependencies installed for that architecture")
    u.add_argument("--publish", metavar="REPO", help="also publish into this TUF repository directory")
    u.add_argument("--keys-dir", help="role keys of the repository (with --publish)")
    u.set_defaults(handler=cmd_update_build)
    u = usub.add_parser("init-repo", parents=[upd_common], help="create a TUF fleet repository (test fleet)")
    u.add_argument("repo", help="repository directory")
    u.add_argument("--keys-dir", required=True, help="directory of the root/targets/snapshot/timestamp keys")
    u.add_argument("--new-keys", action="store_true", help="generate the keys first")
    u.set_defaults(handler=cmd_update_init_repo)
    u = usub.add_parser("provision", parents=[upd_common], help="install the terminal's trusted root.json")
    u.add_argument("trusted_root", help="the repository's root.json (1.root.json)")
    u.set_defaults(handler=cmd_update_provision)

    p = sub.add_parser("receipt", parents=[common], help="image numbers and receipt slips")
    rsub = p.add_subparsers(dest="receipt_command", metavar="ACTION", required=True)
    r = rsub.add_parser("issue", parents=[common], help="issue a number for a photo and print its slip")
    r.add_argument("--profile", required=True, help="document type: id_card, social_security, ...")
    r.add_argument("--city", required=True, help="city id or Chinese name (e.g. shenzhen, 深圳市)")
    r.add_argument("--photo", required=True, help="the document photo (JPEG)")
    r.add_argument("--png", help="virtual printer: write the slip as PNG here")
    r.add_argument("--json", action="store_true")
    r.set_defaults(handler=cmd_receipt_issue)
    r = rsub.add_parser("list", parents=[common], help="issued numbers, newest first")
    r.add_argument("--limit", type=int, default=None)
    r.add_argument("--json", action="store_true")
    r.set_defaults(handler=cmd_receipt_list)
    r = rsub.add_parser("reprint", parents=[common], help="print a stored slip again, marked as a reprint")
    r.add_argument("number")
    r.add_argument("--png", help="virtual printer: write the slip as PNG here")
    r.set_defaults(handler=cmd_receipt_reprint)
    r = rsub.add_parser("verify", parents=[common], help="check a number's format and check character")
    r.add_argument("number")
    r.add_argument("--json", action="store_true")
    r.set_defaults(handler=cmd_receipt_verify)
    r = rsub.add_parser("render", parents=[common], help="render a stored slip to PNG (virtual printer)")
    r.add_argument("number")
    r.add_argument("-o", "--output", required=True, help="PNG file")
    r.add_argument("--escpos", help="also write the raw ESC/POS bytes here")
    r.add_argument("--paper", type=int, choices=(58, 80), help="paper width in mm (default: config)")
    r.add_argument("--reprint", action="store_true", help="render as a reprint")
    r.set_defaults(handler=cmd_receipt_render)

    p = sub.add_parser("platform", parents=[common], help="the reference photo platform (tests, demos)")
    psub = p.add_subparsers(dest="platform_command", metavar="ACTION", required=True)
    r = psub.add_parser("serve", parents=[common], help="serve the reference platform over HTTP")
    r.add_argument("--host", default="127.0.0.1")
    r.add_argument("--port", type=int, default=8765)
    r.add_argument("--data", help="platform database directory (default: STATE_DIR/platform)")
    r.add_argument("--delay", type=float, default=0.0, help="seconds to wait before each reply (slow mode)")
    r.add_argument("--fail-rate", type=float, default=0.0, help="share of requests answered with HTTP 503")
    r.add_argument("--malformed-rate", type=float, default=0.0, help="share of replies that are not JSON")
    r.add_argument("--review", choices=("approve", "reject", "pending"), default="approve")
    r.set_defaults(handler=cmd_platform_serve)

    p = sub.add_parser("store", parents=[common], help="the terminal's durable records")
    ssub = p.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    r = ssub.add_parser("purge", parents=[common], help="delete photos past their retention")
    r.add_argument("--days", type=float, help="retention in days (default: config receipt.retention_days)")
    r.add_argument("--actor", default="system", help="who runs the purge (audit log)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(handler=cmd_store_purge)

    p = sub.add_parser("demo", parents=[common], help="a whole simulated session on the bundled sample face")
    p.add_argument("--out", help="folder for the photo, slip and its store (default: STATE_DIR/demo)")
    p.add_argument("--profile", help="document profile id (default: config session.default_profile)")
    p.add_argument("--city", help="city id for the receipt (default: the document's first city)")
    p.add_argument("--json", action="store_true", help="one JSON object: prompts, states, photo, checks")
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser("run", parents=[common], help="the kiosk service: camera, lights, session, local UI")
    p.add_argument("--sim", action="store_true", help="simulated camera, LEDs and buttons")
    p.add_argument("--port", type=int, help="UI port on 127.0.0.1 (default: config session.ui_port)")
    p.set_defaults(handler=cmd_run)

    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("config", "state_dir"):  # SUPPRESS leaves them unset when not given anywhere
        if not hasattr(args, name):
            setattr(args, name, None)
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
