"""The bilingual catalogue (kiosk/text): the shipped files pass the schema check, every id the code
names exists, placeholders render the same fields in both languages, and errors are told to the
citizen from their code, not from their English message."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from kiosk import text
from kiosk.errors import InputError, KioskError
from kiosk.text import CatalogueError, both, entries, for_error, pair, parse

ROOT = Path(__file__).parents[1]
KIOSK = ROOT / "kiosk"
# text("id"...), both("id"...), pair("id"...), catalogue.text("id"...), entries("prefix"), code="id"
CALL = re.compile(r"\b(text|both|pair|entries)\(\s*[\"']([A-Za-z_][\w.]*)[\"']")
CODE = re.compile(r"\bcode=[\"']([A-Za-z_][\w.]*)[\"']")
CJK = re.compile(r"[\u4e00-\u9fff]")


def referenced_ids() -> tuple[set[str], set[str]]:
    """(ids, prefixes) named by literal strings in the product's code."""
    ids, prefixes = set(), set()
    for path in KIOSK.rglob("*.py"):
        src = path.read_text(encoding="utf-8")
        for fn, name in CALL.findall(src):
            (prefixes if fn == "entries" else ids).add(name)
        ids.update(CODE.findall(src))
    return ids, prefixes


def test_the_shipped_catalogue_passes_the_schema_check():
    cat = text.load()
    assert len(cat) > 100
    for id_, entry in cat.items():
        assert set(entry) == {"zh", "en"}, id_
        assert entry["zh"].strip() and entry["en"].strip(), id_
        assert CJK.search(entry["zh"]), f"{id_}: the zh text has no Chinese"
        assert text.placeholders(entry["zh"]) == text.placeholders(entry["en"]), id_
    domains = {id_.split(".", 1)[0] for id_ in cat}
    assert domains == {p.stem for p in (KIOSK / "text").glob("*.toml")}


def test_every_id_named_in_the_code_is_in_the_catalogue():
    cat = text.catalogue()
    ids, prefixes = referenced_ids()
    assert {"session.sorry", "error.many_faces", "slip.reprint"} <= ids  # the scan sees the code
    assert {"ui", "prompt", "check"} <= prefixes
    assert sorted(ids - set(cat)) == []
    for prefix in prefixes:
        assert entries(prefix), f"no entries under {prefix!r}"


def test_ids_built_at_run_time_exist():
    """Ids the code composes from data: guidance prompts, printer faults, check outcomes."""
    from kiosk.capture.rules import load_rules
    from kiosk.hw.printer import FAULTS

    rules = load_rules()
    for check in rules.checks:
        for band in check.bands:
            assert f"prompt.{band.prompt}" in text.catalogue()
    for fault in FAULTS:
        for who in ("citizen", "technician"):
            assert f"receipt.printer.{fault}.{who}" in text.catalogue()
    assert "receipt.platform.unavailable.citizen" in text.catalogue()
    assert "check.not_measured" in text.catalogue()


def test_old_ids_and_words_are_kept_for_the_screen_and_the_check_json():
    from kiosk.photo.profiles import load_messages
    from kiosk.ui.server import labels

    assert labels()["start"] == {"zh": "开始拍照", "en": "Start"}
    assert load_messages()["roll"]["fail"] == {"zh": "请把头摆正", "en": "Please hold your head level"}
    assert load_messages()["not_measured"][""]["en"] == "Could not be measured"
    assert entries("prompt")["perfect"] == {"zh": "很好，请保持", "en": "Perfect, hold it"}


def test_placeholders_render_in_both_languages():
    zh, en = both("error.many_faces", n=3)
    assert "3" in zh and en.startswith("3 faces found")
    assert text.text("error.many_faces", "en", n=2).startswith("2 faces")
    with pytest.raises(CatalogueError, match="missing or bad field 'n'"):
        both("error.many_faces")
    with pytest.raises(CatalogueError, match="no text 'ui.nothing'"):
        text.text("ui.nothing")
    with pytest.raises(CatalogueError, match="language must be zh or en"):
        text.text("ui.start", "fr")


@pytest.mark.parametrize(
    "files, message",
    [
        ({"ui": {"a": {"zh": "甲"}}}, r"ui.toml: ui.a: an entry has exactly zh and en"),
        ({"ui": {"a": {"zh": "甲", "en": "A", "fr": "A"}}}, r"exactly zh and en"),
        ({"ui": {"a": {"zh": " ", "en": "A"}}}, r"ui.toml: ui.a.zh: must be a non-empty text"),
        ({"ui": {"a": {"zh": "甲", "en": 1}}}, r"ui.a.en: must be a non-empty text"),
        ({"ui": {"a": {"zh": "{n}个", "en": "{count} of them"}}}, r"ui.a: placeholders differ"),
        ({"ui": {"a": {"zh": "{n", "en": "{n"}}}, r"bad placeholder"),
        (
            {"ui": {"a.b": {"zh": "甲", "en": "A"}, "a": {"b": {"zh": "乙", "en": "B"}}}},  # quoted "a.b"
            r"ui.a.b: duplicate id",
        ),
        ({"ui": {"a": "text"}}, r"ui.a: expected a table with zh and en"),
    ],
)
def test_schema_errors_name_the_entry(files, message):
    with pytest.raises(CatalogueError, match=message):
        parse(files)


def test_a_broken_file_is_one_line_naming_it(tmp_path):
    (tmp_path / "ui.toml").write_text('[a]\nzh = "甲"\nen = \n', encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"^ui.toml: "):
        text.load(tmp_path)
    (tmp_path / "ui.toml").write_text('[a]\nzh = "甲"\nen = "A {x}"\n', encoding="utf-8")
    with pytest.raises(CatalogueError, match="placeholders differ"):
        text.load(tmp_path)


def test_errors_are_told_to_the_citizen_from_their_code():
    exc = InputError("3 faces found: only one person may be in the photo", code="error.many_faces", n=3)
    assert exc.exit_code == 2 and exc.code == "error.many_faces" and exc.fields == {"n": 3}
    assert for_error(exc) == pair("error.many_faces", n=3)
    assert "3" in for_error(exc)["zh"]
    # no code (or a code that is not a catalogue id, like a printer fault): the generic apology,
    # never a Chinese guess from the English words
    assert for_error(KioskError("no face found")) == pair("error.photo_failed")
    assert for_error(RuntimeError("boom")) == pair("error.photo_failed")
    assert KioskError("plain").code is None and str(KioskError("plain")) == "plain"


def test_the_photo_engine_raises_coded_errors_for_faces():
    """The engine's face-count errors name catalogue entries (what _zh_reason used to guess)."""
    src = (KIOSK / "photo" / "service.py").read_text(encoding="utf-8")
    assert 'code="error.no_face"' in src and 'code="error.many_faces"' in src
    assert "_zh_reason" not in (KIOSK / "capture" / "photo_adapter.py").read_text(encoding="utf-8")


def test_no_other_bilingual_catalogue_is_left():
    """Old message files are gone; guidance.toml keeps policy only."""
    for old in ("photo/messages.toml", "receipt/messages.toml", "ui/labels.toml"):
        assert not (KIOSK / old).exists(), old
    assert "prompts" not in tomllib.loads((KIOSK / "capture" / "guidance.toml").read_text(encoding="utf-8"))


def test_the_catalogue_is_a_leaf():
    """Every layer reads it (vision excepted), so it imports nothing of kiosk but kiosk.errors."""
    import ast

    imported = set()
    for path in (KIOSK / "text").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(a.name for a in node.names)
    assert {m for m in imported if m.split(".")[0] == "kiosk"} == {"kiosk.errors"}
    assert "import" not in (KIOSK / "errors.py").read_text(encoding="utf-8").replace(
        "from __future__ import annotations", ""
    ).replace("from typing import Any", "")
