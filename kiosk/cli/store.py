"""`kiosk store purge`: photo retention in the terminal's durable records (kiosk.store)."""

from __future__ import annotations

import argparse

from kiosk.cli.common import add_command, add_json, emit
from kiosk.config import Config


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add_command(sub, "store", "the terminal's durable records: photo retention", [common])
    ssub = p.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    r = add_command(ssub, "purge", "delete photos past their retention (audited)", [common], cmd_purge)
    r.add_argument("--days", type=float, help="retention in days (default: config receipt.retention_days)")
    r.add_argument("--actor", default="system", help="who runs the purge (audit log)")
    add_json(r)


def cmd_purge(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.receipt.wiring import open_store

    days = cfg.receipt.retention_days if args.days is None else args.days
    with open_store(cfg) as store:
        out = store.purge(days, actor=args.actor)
    if args.json:
        emit({**out, "retention_days": days})
    else:
        print(f"deleted {out['photos_deleted']} photo(s) and {out['orphans_deleted']} orphan file(s)")
    return 0
