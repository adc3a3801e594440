"""The technician PIN: salted scrypt hash in the configuration, constant-time verification.

scrypt (stdlib ``hashlib.scrypt``) because a PIN has little entropy: the cost per guess is what
protects a leaked configuration file. Format: ``scrypt$N$r$p$<salt b64>$<hash b64>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

from kiosk.errors import InputError

N, R, P = 2**14, 8, 1  # ~16 MiB, some tens of ms per check on a Pi 4
MIN_DIGITS = 6  # a new PIN: a million combinations, with the escalating lockout (kiosk.console.guard)
PIN_RE = re.compile(rf"\d{{{MIN_DIGITS},16}}")
LOGIN_RE = re.compile(r"\d{4,16}")  # what a login attempt may be: a PIN set before 6 digits were needed
_MAX_N = 2**17  # a hash demanding more memory than this is refused (config DoS)


def valid_pin_format(pin: str) -> bool:
    """A PIN that may be set (``pin``, ``kiosk console --hash-pin``): 6 to 16 digits."""
    return PIN_RE.fullmatch(pin) is not None


def looks_like_pin(pin: str) -> bool:
    """A login attempt (counted): digits, 4 to 16 of them; anything else is line noise."""
    return LOGIN_RE.fullmatch(pin) is not None


def hash_pin(pin: str, *, n: int = N, r: int = R, p: int = P) -> str:
    """Hash a new PIN (6 to 16 digits) with a fresh 16-byte salt."""
    if not valid_pin_format(pin):
        raise InputError(f"the PIN must be {MIN_DIGITS} to 16 digits")
    salt = os.urandom(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


def verify_pin(pin: str, stored: str) -> bool:
    """True when the PIN matches; a malformed stored hash never matches (and never raises)."""
    try:
        scheme, n_s, r_s, p_s, salt_s, digest_s = stored.split("$")
        n, r, p = int(n_s), int(r_s), int(p_s)
        salt, digest = base64.b64decode(salt_s, validate=True), base64.b64decode(digest_s, validate=True)
    except ValueError:
        return False
    if (
        scheme != "scrypt"
        or not (2 <= n <= _MAX_N and n & (n - 1) == 0)
        or not (1 <= r <= 16 and 1 <= p <= 4)
    ):
        return False
    if not 16 <= len(digest) <= 64 or len(pin) > 64:
        return False
    try:
        got = hashlib.scrypt(
            pin.encode("utf-8", "replace"), salt=salt, n=n, r=r, p=p, dklen=len(digest), maxmem=256 * 2**20
        )
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(got, digest)
