"""Errors that the command line turns into one-line messages and exit codes."""


class KioskError(Exception):
    """An expected failure with a message meant for a person (exit 1 unless said otherwise)."""

    exit_code = 1


class InputError(KioskError):
    """Unusable input: unreadable, not an image, too small (exit 2)."""

    exit_code = 2


class ModelError(KioskError):
    """A model file or the TFLite runtime is missing or broken."""

    exit_code = 3
