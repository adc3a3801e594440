"""`kiosk receipt`: image numbers, the store's records of them, and the printed slip (kiosk.receipt)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kiosk.cli.common import add_command, add_json, emit, output_path
from kiosk.config import Config
from kiosk.errors import InputError, KioskError


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    summary = "image numbers and receipt slips: issue, list, reprint, verify, render, cities"
    p = add_command(sub, "receipt", summary, [common])
    rsub = p.add_subparsers(dest="receipt_command", metavar="ACTION", required=True)
    r = add_command(rsub, "issue", "issue a number for a photo and print its slip", [common], cmd_issue)
    r.add_argument("--profile", required=True, help="document type: id_card, social_security, ...")
    r.add_argument("--city", required=True, help="city id or Chinese name (e.g. shenzhen, 深圳市)")
    r.add_argument("--photo", required=True, help="the document photo (JPEG)")
    r.add_argument("--png", help="virtual printer: write the slip as PNG here")
    add_json(r)
    r = add_command(rsub, "list", "issued numbers, newest first, and if they printed", [common], cmd_list)
    r.add_argument("--limit", type=int, default=None, help="at most this many numbers")
    add_json(r)
    r = add_command(rsub, "reprint", "print a stored slip again, marked as a reprint", [common], cmd_reprint)
    r.add_argument("number", help="the image number")
    r.add_argument("--png", help="virtual printer: write the slip as PNG here")
    r = add_command(rsub, "verify", "check a number's format and check character", [common], cmd_verify)
    r.add_argument("number", help="the image number")
    add_json(r)
    r = add_command(rsub, "cities", "the province's cities, their codes and documents", [common], cmd_cities)
    r.add_argument("--profile", help="only the cities this document's receipt serves")
    add_json(r)
    r = add_command(rsub, "render", "render a stored slip to PNG (virtual printer)", [common], cmd_render)
    r.add_argument("number", help="the image number")
    r.add_argument("-o", "--output", required=True, help="PNG file")
    r.add_argument("--escpos", help="also write the raw ESC/POS bytes here")
    r.add_argument("--paper", type=int, choices=(58, 80), help="paper width in mm (default: config)")
    r.add_argument("--reprint", action="store_true", help="render as a reprint")


def _save_virtual_slip(printer: Any, png: str | None) -> None:
    from kiosk.station import virtual_slip_png

    data = virtual_slip_png(printer) if png else None
    if png and data:
        Path(png).write_bytes(data)


def cmd_issue(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.receipt.issue import issue_receipt
    from kiosk.receipt.wiring import authority_from_config, open_store
    from kiosk.station import printer_from_config

    output_path(args.png, "receipt")  # before a number is committed: a retry gets no second
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
        emit(r.to_json())
    else:
        print(r.number if r.printed else f"{r.number} (not printed: {r.fault}; {r.message_en})")
    return 0


def cmd_list(args: argparse.Namespace, cfg: Config) -> int:
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
        emit({"receipts": rows})
    else:
        for r in rows:
            state = "printed" if r["printed"] else "NOT PRINTED"
            print(f"{r['number']}  {r['profile']:<16} {r['city']:<10} {state}")
    return 0


def cmd_reprint(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.receipt.issue import fault_message, reprint
    from kiosk.receipt.numbers import parse
    from kiosk.receipt.wiring import authority_from_config, open_store
    from kiosk.station import printer_from_config

    number = parse(args.number).number
    output_path(args.png, "receipt")
    printer = printer_from_config(cfg)
    with open_store(cfg) as store:
        fault = reprint(store, printer, number, authority_from_config(cfg).tz, paper_mm=cfg.receipt.paper_mm)
    _save_virtual_slip(printer, args.png)
    if fault:
        hint = fault_message(fault, "technician")[1]
        raise KioskError(f"reprint of {number} queued, printer fault {fault}: {hint}")
    print(f"{number} reprinted")
    return 0


def cmd_verify(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.receipt.numbers import parse, verify
    from kiosk.receipt.wiring import open_store

    parse(args.number)  # a malformed number is refused before anything is opened
    with open_store(cfg) as store:  # (the store also chooses the configured province)
        parsed, city = verify(args.number)  # the region digits must be a city of the province
        known = store.number(parsed.number) is not None
    if args.json:
        emit({**parsed.to_json(), "city": city.id, "city_zh": city.name_zh, "in_store": known})
    else:
        print(
            f"{parsed.number}: valid {parsed.profile_id} number, region {parsed.region} ({city.name_zh}), "
            f"station {parsed.station}, {parsed.day}, #{parsed.seq}{'' if known else ' (not issued here)'}"
        )
    return 0


def cmd_cities(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.receipt.wiring import use_config

    rows = use_config(cfg).rows(args.profile)
    if args.json:
        emit({"cities": rows})
    else:
        for r in rows:
            docs = " ".join(r["documents"])
            print(f"{r['id']:<10} {r['region']}  {r['zh']}  {r['en']:<10} {r['group_zh']:<4} {docs}")
    return 0


def cmd_render(args: argparse.Namespace, cfg: Config) -> int:
    from zoneinfo import ZoneInfo

    from kiosk.receipt.issue import slip_bytes
    from kiosk.receipt.numbers import parse
    from kiosk.receipt.wiring import open_store
    from kiosk.station import render_escpos

    number = parse(args.number).number
    output_path(args.output, "receipt")  # both outputs checked before either is written
    output_path(args.escpos, "receipt")
    paper = args.paper or cfg.receipt.paper_mm
    with open_store(cfg) as store:
        data = slip_bytes(store, number, ZoneInfo(cfg.receipt.timezone), reprint=args.reprint, paper_mm=paper)
    render_escpos(data, paper)[0].save(args.output, format="PNG")
    if args.escpos:
        Path(args.escpos).write_bytes(data)
    print(args.output)
    return 0
