"""Errors that the command line turns into one-line messages and exit codes."""

from __future__ import annotations

from typing import Any


class KioskError(Exception):
    """An expected failure with a message meant for a person (exit 1 unless said otherwise).

    The message is the technician's (logs, the command line). ``code`` optionally names an entry of
    the bilingual catalogue (kiosk/text) and ``fields`` fill its placeholders: what a citizen is
    told, in their language, without matching the English message (``kiosk.text.for_error``).
    """

    exit_code = 1

    def __init__(self, message: str = "", *, code: str | None = None, **fields: Any) -> None:
        super().__init__(message)
        self.code = code
        self.fields = fields


class InputError(KioskError):
    """Unusable input: unreadable, not an image, too small (exit 2)."""

    exit_code = 2


class ModelError(KioskError):
    """A model file or the TFLite runtime is missing or broken."""

    exit_code = 3
