"""The one bilingual catalogue: every word the terminal says to a citizen or a technician, zh and en.

One TOML file per domain in this folder (prompt, check, ui, session, slip, receipt, error); an
entry is a table with exactly ``zh`` and ``en``, and its id is ``<file>.<dotted path>`` (for
example ``check.yaw.fail`` or ``ui.start``). The catalogue is checked when loaded: non-empty texts
in both languages, unique ids, and the same ``{placeholders}`` in both, so a text never renders in
one language and fails in the other. Spoken prompts are rendered from the same entries.
"""

from __future__ import annotations

import string
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from kiosk.errors import KioskError

HERE = Path(__file__).parent
LANGS = ("zh", "en")
Entry = dict[str, str]  # {"zh": ..., "en": ...}


class CatalogueError(KioskError):
    """The catalogue is malformed, or a text was asked for that it does not hold."""


def placeholders(s: str) -> set[str]:
    """The names of the ``{fields}`` in a text (``{{`` is a literal brace)."""
    try:
        return {name for _, name, _, _ in string.Formatter().parse(s) if name is not None}
    except ValueError as exc:
        raise CatalogueError(f"bad placeholder in {s!r}: {exc}") from None


def _flatten(node: Any, path: str, out: dict[str, Entry], where: str) -> None:
    if not isinstance(node, dict) or not node:
        raise CatalogueError(f"{where}: {path}: expected a table with zh and en")
    if set(node) & set(LANGS):
        if set(node) != set(LANGS):
            raise CatalogueError(f"{where}: {path}: an entry has exactly zh and en, got {sorted(node)}")
        for lang in LANGS:
            if not isinstance(node[lang], str) or not node[lang].strip():
                raise CatalogueError(f"{where}: {path}.{lang}: must be a non-empty text")
        if placeholders(node["zh"]) != placeholders(node["en"]):
            raise CatalogueError(
                f"{where}: {path}: placeholders differ: zh {sorted(placeholders(node['zh']))}, "
                f"en {sorted(placeholders(node['en']))}"
            )
        if path in out:
            raise CatalogueError(f"{where}: {path}: duplicate id")
        out[path] = {"zh": node["zh"], "en": node["en"]}
        return
    for key, value in node.items():
        _flatten(value, f"{path}.{key}", out, where)


def parse(domains: dict[str, dict[str, Any]]) -> dict[str, Entry]:
    """{domain: parsed TOML} -> {id: {"zh", "en"}}; CatalogueError names the first bad entry."""
    out: dict[str, Entry] = {}
    for domain, data in domains.items():
        if not domain.isidentifier():
            raise CatalogueError(f"{domain}: a domain name is a plain word")
        _flatten(data, domain, out, f"{domain}.toml")
    return out


def load(directory: str | Path = HERE) -> dict[str, Entry]:
    """Read and check every ``*.toml`` of ``directory``."""
    domains = {}
    for path in sorted(Path(directory).glob("*.toml")):
        try:
            domains[path.stem] = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise CatalogueError(f"{path.name}: {exc}") from None
    return parse(domains)


@lru_cache(maxsize=1)
def catalogue() -> dict[str, Entry]:
    """The shipped catalogue, loaded once."""
    return load()


def _entry(id: str) -> Entry:
    try:
        return catalogue()[id]
    except KeyError:
        raise CatalogueError(f"no text {id!r} in the catalogue") from None


def _render(s: str, id: str, fields: dict[str, Any]) -> str:
    if not fields and "{" not in s:
        return s
    try:
        return s.format_map(fields)
    except (KeyError, IndexError, ValueError) as exc:
        raise CatalogueError(f"text {id!r}: missing or bad field {exc}") from None


def text(id: str, lang: str = "zh", **fields: Any) -> str:
    """One entry in one language (zh or en), its placeholders filled from ``fields``."""
    if lang not in LANGS:
        raise CatalogueError(f"language must be zh or en, not {lang!r}")
    return _render(_entry(id)[lang], id, fields)


def both(id: str, **fields: Any) -> tuple[str, str]:
    """One entry as (zh, en)."""
    e = _entry(id)
    return _render(e["zh"], id, fields), _render(e["en"], id, fields)


def pair(id: str, **fields: Any) -> Entry:
    """One entry as {"zh", "en"}: the shape the screen and the JSON reports carry."""
    zh, en = both(id, **fields)
    return {"zh": zh, "en": en}


def entries(prefix: str) -> dict[str, Entry]:
    """Every entry under ``prefix`` keyed by the rest of its id: entries("ui") -> {"start": ...}."""
    head = prefix + "."
    return {k[len(head) :]: dict(v) for k, v in catalogue().items() if k.startswith(head)}


def for_error(exc: BaseException, fallback: str = "error.photo_failed") -> Entry:
    """What a citizen is told about an error: its catalogue code with its fields, else ``fallback``."""
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code in catalogue():
        return pair(code, **getattr(exc, "fields", {}))
    return pair(fallback)
