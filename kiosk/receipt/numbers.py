"""Image numbers: the ISO 7064 MOD 11-2 check character and the per-document formats from numbers.toml.

A number read from a citizen, the platform or the command line is untrusted: parse() and verify() say
in one line what is wrong with it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from kiosk.errors import InputError, KioskError

FORMATS_FILE = Path(__file__).with_name("numbers.toml")
SCHEMA_VERSION = 1
REGION_DIGITS = 6
STATION_DIGITS = 3
DATE_DIGITS = 6  # YYMMDD, local date of the terminal


class NumberError(InputError):
    """A number that is malformed or whose check character does not match (exit 2)."""


def mod11_2(digits: str) -> str:
    """ISO 7064 MOD 11-2 check character of a string of digits ('0'-'9' or 'X')."""
    if not digits or not digits.isdigit() or not digits.isascii():
        raise NumberError(f"check character needs digits, got {digits!r}")
    p = 0
    for ch in digits:
        p = ((p + int(ch)) * 2) % 11
    c = (12 - p) % 11
    return "X" if c == 10 else str(c)


def check_ok(number: str) -> bool:
    """True when the last character is the MOD 11-2 check character of the others."""
    return (
        len(number) >= 2
        and number[:-1].isdigit()
        and number[:-1].isascii()
        and mod11_2(number[:-1]) == number[-1]
    )


@dataclass(frozen=True)
class NumberFormat:
    profile_id: str
    doc_code: str
    seq_digits: int
    gap_free: bool

    @property
    def length(self) -> int:
        return len(self.doc_code) + REGION_DIGITS + STATION_DIGITS + DATE_DIGITS + self.seq_digits + 1

    def series(self, region: str, station: str, day: date) -> str:
        if not (len(region) == REGION_DIGITS and region.isdigit()):
            raise KioskError(f"region code must be {REGION_DIGITS} digits, got {region!r}")
        if not (len(station) == STATION_DIGITS and station.isdigit()):
            raise KioskError(f"station id must be {STATION_DIGITS} digits, got {station!r}")
        return f"{self.doc_code}{region}{station}{day:%y%m%d}"

    def make(self, series: str, seq: int) -> str:
        if not 1 <= seq < 10**self.seq_digits:
            raise KioskError(
                f"sequence {seq} does not fit {self.seq_digits} digits: the series {series} is full"
            )
        body = f"{series}{seq:0{self.seq_digits}d}"
        return body + mod11_2(body)


@dataclass(frozen=True)
class ParsedNumber:
    number: str
    profile_id: str
    region: str
    station: str
    day: date
    seq: int
    series: str

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "valid": True,
            "profile": self.profile_id,
            "region": self.region,
            "station": self.station,
            "date": self.day.isoformat(),
            "seq": self.seq,
            "series": self.series,
        }


def parse_formats(data: dict) -> dict[str, NumberFormat]:
    if data.get("schema_version") != SCHEMA_VERSION:
        raise KioskError(f"numbers.toml: schema_version must be {SCHEMA_VERSION}")
    formats = data.get("formats")
    if not isinstance(formats, dict) or not formats:
        raise KioskError("numbers.toml: formats: expected a non-empty table")
    out: dict[str, NumberFormat] = {}
    codes: set[str] = set()
    for pid, t in formats.items():
        where = f"numbers.toml: formats.{pid}"
        if not isinstance(t, dict):
            raise KioskError(f"{where}: expected a table")
        unknown = set(t) - {"doc_code", "seq_digits", "gap_free"}
        if unknown:
            raise KioskError(f"{where}.{sorted(unknown)[0]}: unknown key")
        code, digits, gap_free = t.get("doc_code"), t.get("seq_digits"), t.get("gap_free", True)
        if not (isinstance(code, str) and code.isdigit() and code.isascii() and len(code) == 1):
            raise KioskError(f"{where}.doc_code: expected one digit as a string")
        if code in codes:
            raise KioskError(f"{where}.doc_code: {code} is used by another document")
        if not (isinstance(digits, int) and not isinstance(digits, bool) and 3 <= digits <= 8):
            raise KioskError(f"{where}.seq_digits: expected an integer 3..8")
        if not isinstance(gap_free, bool):
            raise KioskError(f"{where}.gap_free: expected true or false")
        codes.add(code)
        out[pid] = NumberFormat(pid, code, digits, gap_free)
    return out


@lru_cache(maxsize=2)
def load_formats(path: str | Path = FORMATS_FILE) -> dict[str, NumberFormat]:
    try:
        return parse_formats(tomllib.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise KioskError(f"cannot read number formats {path}: {exc}") from None


def format_for(profile_id: str) -> NumberFormat:
    formats = load_formats()
    if profile_id not in formats:
        raise InputError(f"unknown document type {profile_id!r}; known: {', '.join(sorted(formats))}")
    return formats[profile_id]


def parse(number: str) -> ParsedNumber:
    """Parse and verify a number; raises NumberError naming what is wrong."""
    n = number.strip().upper()
    if not n or len(n) > 64 or not n.isascii() or not n[:-1].isdigit():
        raise NumberError(f"{number!r} is not an image number (digits with a final check character)")
    fmt = next((f for f in load_formats().values() if f.doc_code == n[0]), None)
    if fmt is None:
        raise NumberError(f"{n}: unknown document code {n[0]}")
    if len(n) != fmt.length:
        raise NumberError(f"{n}: a {fmt.profile_id} number has {fmt.length} characters, not {len(n)}")
    if mod11_2(n[:-1]) != n[-1]:
        raise NumberError(f"{n}: check character {n[-1]} is wrong (expected {mod11_2(n[:-1])})")
    i = len(fmt.doc_code)
    region, station = n[i : i + REGION_DIGITS], n[i + REGION_DIGITS : i + REGION_DIGITS + STATION_DIGITS]
    j = i + REGION_DIGITS + STATION_DIGITS
    try:
        day = datetime.strptime(n[j : j + DATE_DIGITS], "%y%m%d").date()
    except ValueError:
        raise NumberError(f"{n}: {n[j : j + DATE_DIGITS]} is not a date") from None
    seq = int(n[j + DATE_DIGITS : -1])
    if seq == 0:
        raise NumberError(f"{n}: sequence 0 is never issued")
    return ParsedNumber(n, fmt.profile_id, region, station, day, seq, n[: j + DATE_DIGITS])


def verify(number: str, layouts: Any = None) -> tuple[ParsedNumber, Any]:
    """`receipt verify`: parse() and the region digits name a city of the province in use.

    Returns the parsed number and its City (kiosk.receipt.layouts); NumberError otherwise.
    """
    from kiosk.receipt.layouts import load_layouts

    lay = layouts or load_layouts()
    parsed = parse(number)
    city = lay.city_by_region(parsed.region)
    if city is None:
        where = lay.province_zh or Path(lay.source).name
        raise NumberError(f"{parsed.number}: region {parsed.region} is not a city of {where}")
    return parsed, city
