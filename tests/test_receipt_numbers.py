"""Image numbers: the ISO 7064 MOD 11-2 check character and parsing untrusted numbers."""

from __future__ import annotations

from datetime import date

import pytest

from kiosk.receipt.numbers import NumberError, format_for, load_formats, mod11_2, parse, parse_formats


def test_mod11_2_matches_citizen_id_numbers():
    # published sample ID numbers (GB 11643): the last character is the MOD 11-2 check
    assert mod11_2("11010519491231002") == "X"
    assert mod11_2("44052418800101001") == "4"
    assert mod11_2("0794") == "0"  # ISO 7064 annex example: 0794 -> 0
    assert mod11_2("079") == "X"  # 079X is the standard's example with check X


def test_every_single_digit_change_is_caught():
    fmt = format_for("id_card")
    number = fmt.make(fmt.series("440300", "001", date(2026, 11, 25)), 17)
    parse(number)
    for i in range(len(number) - 1):
        for d in "0123456789":
            if d != number[i]:
                wrong = number[:i] + d + number[i + 1 :]
                with pytest.raises(NumberError):
                    parse(wrong)


def test_number_layout_round_trips():
    fmt = format_for("driving_licence")
    n = fmt.make(fmt.series("440100", "007", date(2026, 1, 31)), 42)
    p = parse(n)
    assert (p.profile_id, p.region, p.station, p.day, p.seq) == (
        "driving_licence",
        "440100",
        "007",
        date(2026, 1, 31),
        42,
    )
    assert len(n) == fmt.length


@pytest.mark.parametrize(
    "bad", ["", "abc", "1" * 200, "9440300001261125000017", "14403000012613250000X", "12345"]
)
def test_malformed_numbers_are_rejected_in_one_line(bad):
    with pytest.raises(NumberError) as exc:
        parse(bad)
    assert "\n" not in str(exc.value)


def test_sequence_overflow_and_format_schema():
    fmt = format_for("driving_licence")
    with pytest.raises(Exception, match="full"):
        fmt.make(fmt.series("440100", "007", date(2026, 1, 31)), 10**fmt.seq_digits)
    with pytest.raises(Exception, match="doc_code"):
        parse_formats(
            {
                "schema_version": 1,
                "formats": {"a": {"doc_code": "1", "seq_digits": 4}, "b": {"doc_code": "1", "seq_digits": 4}},
            }
        )
    with pytest.raises(Exception, match="unknown key"):
        parse_formats({"schema_version": 1, "formats": {"a": {"doc_code": "1", "seq_digits": 4, "x": 1}}})
    assert set(load_formats()) == {"id_card", "social_security", "driving_licence", "exit_entry"}
