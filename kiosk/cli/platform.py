"""`kiosk platform serve`: the reference photo platform for tests and demos (kiosk.sim, via kiosk.station)."""

from __future__ import annotations

import argparse
from pathlib import Path

from kiosk.cli.common import add_command
from kiosk.config import Config
from kiosk.errors import InputError

# the reference platform's rejection reasons (kiosk.sim.platform.REJECT_REASONS; the CLI imports no sim)
REJECT_REASONS = ("background", "face_covered", "expression", "glare", "quality", "head_covering", "other")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add_command(sub, "platform", "the reference photo platform (tests, demos)", [common])
    psub = p.add_subparsers(dest="platform_command", metavar="ACTION", required=True)
    r = add_command(
        psub,
        "serve",
        "serve the reference platform (HTTP, or HTTPS requiring terminal certificates), optionally faulty",
        [common],
        cmd_serve,
    )
    r.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    r.add_argument("--port", type=int, default=8765, help="TCP port (default: %(default)s)")
    r.add_argument("--data", help="platform database directory (default: STATE_DIR/platform)")
    r.add_argument("--delay", type=float, default=0.0, help="seconds to wait before each reply (slow mode)")
    r.add_argument("--fail-rate", type=float, default=0.0, help="share of requests answered with HTTP 503")
    r.add_argument("--malformed-rate", type=float, default=0.0, help="share of replies that are not JSON")
    r.add_argument("--tls-cert", metavar="FILE", help="the platform's certificate (PEM): serve HTTPS")
    r.add_argument("--tls-key", metavar="FILE", help="the key of --tls-cert (PEM)")
    r.add_argument(
        "--client-ca",
        metavar="FILE",
        help="CA bundle of the terminals' certificates: a client without one from it is refused",
    )
    r.add_argument(
        "--review",
        choices=("approve", "reject", "pending"),
        default="approve",
        help="what the platform's photo review answers (default: %(default)s)",
    )
    r.add_argument(
        "--reject-reason",
        choices=REJECT_REASONS,
        default="background",
        help="the reason a rejecting review gives (default: %(default)s); POST /_review decides one number",
    )


def cmd_serve(args: argparse.Namespace, cfg: Config) -> int:
    from kiosk.station import serve_platform

    data = Path(args.data) if args.data else cfg.state_dir / "platform"
    files = (args.tls_cert, args.tls_key, args.client_ca)
    if any(files) and not all(files):
        raise InputError("platform serve: --tls-cert, --tls-key and --client-ca go together (mutual TLS)")
    serve_platform(
        args.host,
        args.port,
        data,
        tls=(Path(args.tls_cert), Path(args.tls_key), Path(args.client_ca)) if all(files) else None,
        delay_s=args.delay,
        fail_rate=args.fail_rate,
        malformed_rate=args.malformed_rate,
        review=args.review,
        reject_reason=args.reject_reason,
    )
    return 0
