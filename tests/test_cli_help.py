"""`kiosk` as a newcomer meets it: what --help says, one-line usage errors, outputs it refuses."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from kiosk.cli import GROUPS, build_parser, main
from kiosk.samples import sample_path


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """Every (path, summary, parser) below PARSER, nested actions included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield (*path, name), summaries.get(name), sub
                yield from commands(sub, (*path, name))


def test_help_opens_with_what_the_terminal_does_and_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    description = out.split("\n\n")[1]
    assert description.startswith("kiosk runs a self-service ID-photo terminal")
    assert "citizen" in description and "argument parsing" not in out
    top = {p[0] for p, _, _ in commands(build_parser())}
    assert top == {"demo", "run", "analyze", "profiles", "check", "make-photo", "receipt", "platform",
                   "store", "console", "update", "fleet"}  # fmt: skip
    assert out.index("demo  ") < out.index("update  ")  # the citizen's job first, service tools last


def test_every_subcommand_has_a_summary_that_opens_its_own_help(capsys):
    seen = 0
    for path, summary, _ in commands(build_parser()):
        assert summary and "\n" not in summary and len(summary) < 100, path
        with pytest.raises(SystemExit) as exit_:
            main([*path, "--help"])
        out = capsys.readouterr().out
        assert exit_.value.code == 0 and out.startswith(f"usage: kiosk {' '.join(path)}"), path
        assert summary in " ".join(out.split()), path  # argparse may rewrap the description
        seen += 1
    assert seen >= 25  # 11 commands plus their actions


def test_every_option_says_what_it_is_for():
    for path, _, parser in commands(build_parser()):
        for action in parser._actions:
            if not isinstance(action, argparse._SubParsersAction):
                assert action.help, (path, action.dest)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["demo", "--bogus"], "kiosk: demo: unrecognized arguments: --bogus (see `kiosk demo --help`)"),
        (["receipt", "verify", "1", "2"], "kiosk: receipt verify: unrecognized arguments: 2"),
        (["receipt"], "receipt: the following arguments are required: ACTION"),
        (["check", "x.jpg"], "check: the following arguments are required: --profile"),
        (["receipt", "render", "1", "--paper", "70"], "receipt render: argument --paper: invalid choice"),
        (["nosuchcommand"], "invalid choice: 'nosuchcommand'"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.startswith("kiosk: ") and says in err and err.count("\n") == 1, err
    assert "usage:" not in err and "--help" in err


def test_make_photo_refuses_a_png_name_instead_of_writing_a_jpeg_under_it(tmp_path, capsys):
    out = tmp_path / "x.png"
    code = main(["make-photo", str(sample_path()), "--profile", "id_card", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert err == f"kiosk: make-photo: {out}: document photos are JPEG; name it .jpg or .jpeg\n"


def test_an_unwritable_output_path_is_one_line_not_a_traceback(tmp_path, capsys):
    """An OSError on a path the user named (here: a folder that does not exist) is bad input."""
    from kiosk.receipt.wiring import cities_for
    from tests.test_receipt_support import jpeg

    photo, state = tmp_path / "p.jpg", ["--state-dir", str(tmp_path)]
    photo.write_bytes(jpeg())
    city = cities_for("id_card")[0]["id"]
    assert (
        main(["receipt", "issue", "--profile", "id_card", "--city", city, "--photo", str(photo), *state]) == 0
    )
    number = capsys.readouterr().out.split()[0]
    out = tmp_path / "no" / "slip.png"
    code = main(["receipt", "render", number, "-o", str(out), *state])
    err = capsys.readouterr().err
    assert code == 2 and err == f"kiosk: receipt: {out}: No such file or directory\n"


def test_the_entry_point_module_and_a_light_parser():
    """`python -m kiosk.cli` is what the fleet launcher runs; building the parser loads no models."""
    r = subprocess.run([sys.executable, "-m", "kiosk.cli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("kiosk ")
    heavy = "('cv2', 'numpy', 'kiosk.vision', 'kiosk.photo', 'tuf')"
    probe = (
        f"import sys, kiosk.cli; kiosk.cli.build_parser(); print(*(m for m in {heavy} if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "", r.stdout + r.stderr
    assert all(hasattr(g, "register") for g in GROUPS)
