"""`kiosk store purge`: photo retention in the terminal's durable records (kiosk.store)."""

from __future__ import annotations

import argparse

from kiosk.cli.common import add_command, add_json, emit
from kiosk.config import Config
from kiosk.errors import InputError


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add_command(sub, "store", "the terminal's durable records: photo retention", [common])
    ssub = p.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    r = add_command(ssub, "purge", "delete photos past their retention (audited)", [common], cmd_purge)
    r.add_argument(
        "--days",
        type=float,
        help="days a photo is kept after nothing needs it any more (default: receipt.retention_days)",
    )
    r.add_argument("--actor", default="system", help="who runs the purge (audit log)")
    add_json(r)


def cmd_purge(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.store import Store

    days = cfg.receipt.retention_days if args.days is None else args.days
    if not 0.0 <= days <= 3650.0:
        raise InputError(f"--days {days:g}: must be between 0 and 3650")
    # a terminal that uploads nothing keeps a photo only until its slip is handed over (kiosk.store)
    uploading = cfg.receipt.authority == "platform" or cfg.receipt.upload
    with Store.for_purge(cfg.state_dir) as store:  # works on a full disk: purging is what frees it
        out = store.purge(days, actor=args.actor, uploading=uploading)
    if args.json:
        emit({**out, "retention_days": days, "uploading": uploading})
    else:
        print(f"deleted {out['photos_deleted']} photo(s) and {out['orphans_deleted']} orphan file(s)")
    return 0
