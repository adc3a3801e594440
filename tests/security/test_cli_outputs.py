"""Issue 13, Low 15 and 16 — outputs the CLI cannot write, a damaged or full store, a closed stdout.

15: every output path is checked before any work and before a number is committed (a retrying
script got a second number from `receipt issue --png /missing/x.png`); a corrupted database and a
full disk are one-line errors; `store purge` frees space on a full disk.
16: `kiosk check … | true` exited 0 for a photo it refused: the exit status is the verdict, also when
nobody reads the report."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from kiosk.cli import main
from kiosk.store import DB_NAME, Store
from tests.test_receipt_support import jpeg

SAMPLE = Path(__file__).resolve().parents[2] / "kiosk" / "samples" / "astronaut.jpg"  # not a document photo


def _kiosk(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> None:
    assert err.count("\n") == 1 and err.startswith("kiosk: ") and "Traceback" not in err, err


@pytest.fixture
def photo(tmp_path):
    p = tmp_path / "p.jpg"
    p.write_bytes(jpeg())
    return p


def _issue(capsys, state: Path, photo: Path, *extra: str) -> tuple[int, str, str]:
    return _kiosk(
        capsys,
        "receipt",
        "issue",
        "--profile",
        "id_card",
        "--city",
        "shenzhen",
        "--photo",
        str(photo),
        f"--state-dir={state}",
        *extra,
    )


@pytest.mark.parametrize("out", ["{tmp}/missing/x.jpg", "{tmp}/adir.jpg", ""])
def test_make_photo_output_refused_before_the_models_run(tmp_path, capsys, monkeypatch, out):
    (tmp_path / "adir.jpg").mkdir()
    import kiosk.photo.service as service

    def no_models(*a, **k):  # the output is checked first: the engine is never built
        raise AssertionError("the photo engine ran before the output was checked")

    monkeypatch.setattr(service, "PhotoTools", no_models)
    code, _, err = _kiosk(
        capsys, "make-photo", str(SAMPLE), "--profile", "id_card", "-o", out.format(tmp=tmp_path)
    )
    assert code == 2
    _one_line(err)


def test_receipt_issue_checks_its_png_before_committing_a_number(tmp_path, capsys, photo):
    state = tmp_path / "state"
    for _ in range(2):  # a retrying script
        code, out, err = _issue(capsys, state, photo, "--png", str(tmp_path / "missing" / "x.png"))
        assert code == 2 and out == ""
        _one_line(err)
    with Store(state) as s:
        assert s.numbers() == []


def test_receipt_render_checks_both_outputs_first(tmp_path, capsys, photo):
    state = tmp_path / "state"
    code, number, err = _issue(capsys, state, photo)
    assert code == 0, err
    number = number.strip()
    for argv in (
        ["-o", str(tmp_path / "missing" / "r.png")],
        ["-o", str(tmp_path / "r.png"), "--escpos", str(tmp_path / "missing" / "r.bin")],
        ["-o", str(tmp_path)],
    ):
        code, _, err = _kiosk(capsys, "receipt", "render", number, *argv, f"--state-dir={state}")
        assert code == 2
        _one_line(err)
    assert not (tmp_path / "r.png").exists()  # nothing half-done either


@pytest.mark.parametrize("damage", ["not_a_database", "malformed"])
def test_a_corrupted_database_is_one_line(tmp_path, capsys, photo, damage):
    state = tmp_path / "state"
    for _ in range(3):
        assert _issue(capsys, state, photo)[0] == 0
    db = state / DB_NAME
    with Store(state) as s:
        s.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    rnd = random.Random(13)
    if damage == "not_a_database":
        db.write_bytes(bytes(rnd.randrange(256) for _ in range(20000)))
    else:  # the header survives, the pages behind it do not
        data = bytearray(db.read_bytes())
        for i in range(4096, len(data)):
            data[i] = rnd.randrange(256)
        db.write_bytes(bytes(data))
    for argv in (
        ["receipt", "list"],
        ["receipt", "issue", "--profile", "id_card", "--city", "shenzhen", "--photo", str(photo)],
        ["store", "purge", "--days", "0"],
    ):
        code, _, err = _kiosk(capsys, *argv, f"--state-dir={state}")
        assert code == 1, (argv, err)
        _one_line(err)
        assert "damaged" in err


def _noisy_jpeg(seed: int) -> bytes:
    """A photo of a real photo's size (tens of KB), so that deleting it frees real space."""
    rnd = random.Random(seed)
    im = Image.frombytes("RGB", (358, 441), bytes(rnd.randrange(256) for _ in range(358 * 441 * 3)))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=60)
    return buf.getvalue()


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


def _fill(disk: Path) -> None:
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    assert os.statvfs(disk).f_bavail == 0


def test_a_full_disk_is_one_line_and_purge_frees_it(tmp_path, capsys, small_disk):
    state = small_disk / "state"
    for i in range(3):
        p = tmp_path / f"p{i}.jpg"
        p.write_bytes(_noisy_jpeg(i))
        assert _issue(capsys, state, p)[0] == 0
    _fill(small_disk)

    code, out, err = _issue(capsys, state, tmp_path / "p0.jpg")
    assert code != 0 and out == ""
    _one_line(err)

    code, out, err = _kiosk(capsys, "store", "purge", "--days", "0", f"--state-dir={state}")
    assert code == 0, err
    assert list((state / "photos").glob("*.jpg")) == []
    with Store(state) as s:
        assert s.audit_log()[-1]["action"] == "purge"


def test_purge_opens_a_full_disk_with_no_room_for_the_wal_index(tmp_path, capsys, small_disk):
    """Nothing else has the store open: SQLite must create its -shm file, and there is no room."""
    state = small_disk / "state"
    p = tmp_path / "p.jpg"
    p.write_bytes(_noisy_jpeg(7))
    assert _issue(capsys, state, p)[0] == 0
    assert not (state / (DB_NAME + "-shm")).exists()
    _fill(small_disk)
    code, _, err = _kiosk(capsys, "store", "purge", "--days", "0", f"--state-dir={state}")
    assert code == 0, err
    assert list((state / "photos").glob("*.jpg")) == []


@pytest.mark.slow
def test_check_with_its_output_closed_still_exits_with_the_verdict(tmp_path):
    for json_flag in ([], ["--json"]):
        proc = subprocess.Popen(
            [sys.executable, "-m", "kiosk.cli", "check", str(SAMPLE), "--profile", "id_card", *json_flag],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        proc.stdout.close()  # `| true`: the reader is gone before the report is written
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 1, err  # a refused photo is never exit 0
        assert "Traceback" not in err and "BrokenPipe" not in err
