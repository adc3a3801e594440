"""`kiosk update`: signed fleet releases with rollback (kiosk.fleet)."""

from __future__ import annotations

import argparse

from kiosk.cli.common import Parser, add_command, emit
from kiosk.config import Config


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    upd = Parser(add_help=False, parents=[common])
    upd.add_argument("--root", help="release root (releases/, current, state/); default fleet.root")
    upd.add_argument("--restart-command", help="run this as the service instead of systemctl ({root})")
    upd.add_argument("--ready-timeout", type=float, help="seconds from restart to READY=1")
    upd.add_argument("--stable", type=float, help="seconds the new release must run before commit")
    upd.add_argument("--give-up-after", type=float, help="seconds of deferral before giving up")
    upd.add_argument("--json", action="store_true", help="JSON output")
    p = add_command(
        sub,
        "update",
        "signed fleet updates: status, check, apply, rollback, build",
        [common],
        details="A release is committed only after the new service reports READY and stays up; "
        "otherwise the previous one comes back.",
    )
    usub = p.add_subparsers(dest="update_command", metavar="ACTION", required=True)
    add_command(usub, "status", "installed releases, update state and the last result", [upd], cmd_status)
    u = add_command(usub, "check", "ask the fleet repository (TUF) for a newer release", [upd], cmd_check)
    u.add_argument("--repo", help="repository URL (https:// or file://); default fleet.repository_url")
    u.add_argument("--install", action="store_true", help="download and apply a newer release")
    u = add_command(usub, "apply", "install a bundle file (e.g. from a USB stick)", [upd], cmd_apply)
    u.add_argument("bundle", help="bundle file (.kbundle)")
    add_command(usub, "rollback", "go back to the previous release", [upd], cmd_rollback)
    u = add_command(usub, "recover", "finish or undo an interrupted update", [upd], cmd_recover)
    u.add_argument("--boot", action="store_true", help="at boot, before the service: never (re)start it")
    u = add_command(usub, "build", "make and sign a bundle from the working tree", [upd], cmd_build)
    u.add_argument("--version", required=True, help="release version, e.g. 1.4.2")
    u.add_argument("--key", action="append", required=True, help="targets signing key (PEM); repeatable")
    u.add_argument("-o", "--output", required=True, help="bundle file to write")
    u.add_argument("--arch", help="terminal architecture (default: this machine's)")
    u.add_argument("--site", help="prepared site directory (default: the arch's lock in locks/, from wheels)")
    u.add_argument("--publish", metavar="REPO", help="also publish into this TUF repository directory")
    u.add_argument("--keys-dir", help="role keys of the repository (with --publish)")
    u = add_command(usub, "init-repo", "create a TUF fleet repository (test fleet)", [upd], cmd_init_repo)
    u.add_argument("repo", help="repository directory")
    u.add_argument("--keys-dir", required=True, help="directory of the root/targets/snapshot/timestamp keys")
    u.add_argument("--new-keys", action="store_true", help="generate the keys first")
    u = add_command(usub, "provision", "install the terminal's trusted root.json", [upd], cmd_provision)
    u.add_argument("trusted_root", help="the repository's root.json (1.root.json)")


def _updater(args: argparse.Namespace, cfg: Config):  # noqa: ANN202 - kiosk.fleet loads lazily
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
        emit({"outcomes": rows, **(extra or {})})
    else:
        for o in outcomes:
            print(f"{o.status}: {o.message}")
    return outcomes[-1].exit_code if outcomes else 0


def cmd_status(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.fleet import manage

    upd = _updater(args, cfg)
    outcomes = manage.recover(upd)
    st = upd.status()
    if args.json:
        emit({**st, "recovered": [o.message for o in outcomes]})
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


def cmd_apply(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.fleet import manage

    return _report_outcomes(args, manage.apply(_updater(args, cfg), args.bundle))


def cmd_rollback(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.fleet import manage

    return _report_outcomes(args, manage.rollback(_updater(args, cfg)))


def cmd_recover(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.fleet import manage

    return _report_outcomes(args, manage.recover(_updater(args, cfg), boot=args.boot))


def cmd_check(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.fleet import manage
    from kiosk.fleet.updater import Outcome

    url = args.repo or cfg.fleet.repository_url
    outcomes, available = manage.check(_updater(args, cfg), url, args.install)
    if available and not args.install:
        outcomes.append(Outcome("available", available.version, f"release {available.version} is available"))
    if not outcomes:
        if args.json:
            emit({"outcomes": []})
        else:
            print("up-to-date: no newer release")
        return 0
    return _report_outcomes(args, outcomes)


def cmd_build(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.fleet import manage, wheels
    from kiosk.fleet.bundle import default_arch

    arch = args.arch or default_arch()
    cache = wheels.cache_dir(cfg.state_dir)  # downloaded wheels are kept for the next build
    m = manage.build_from_checkout(args.version, args.key, args.output, arch, args.site, cache)
    if args.publish:
        manage.publish(args.publish, args.keys_dir, args.output)
    if args.json:
        emit(
            {
                "bundle": args.output,
                "version": m.version,
                "arch": m.arch,
                "abi": m.abi,
                "files": len(m.files),
                "bytes": m.total_size,
                "published": args.publish,
            }
        )
    else:
        target = m.arch + (f"/{m.abi}" if m.abi else "")
        print(f"{args.output}: kiosk {m.version} for {target}, {len(m.files)} files, {m.total_size} bytes")
    return 0


def cmd_init_repo(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.fleet import manage

    root_json = manage.init_repository(args.repo, args.keys_dir, args.new_keys)
    print(f"repository {args.repo} ready; provision terminals with {root_json}")
    return 0


def cmd_provision(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.fleet import manage

    print(f"trusted root installed: {manage.provision(_updater(args, cfg), args.trusted_root)}")
    return 0
