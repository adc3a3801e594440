"""`kiosk analyze` as scripts use it: JSON shape, exit codes, one-line errors, video lines."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from kiosk.samples import sample_path


def run(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kiosk.cli", *args], capture_output=True, text=True, **kw)


def test_image_json_with_landmarks():
    r = run("analyze", str(sample_path()), "--json", "--landmarks")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["width"], out["height"]) == (512, 512)
    (face,) = out["faces"]
    assert len(face["landmarks"]) == 468 and all(len(p) == 2 for p in face["landmarks"])
    assert set(face["pose"]) == {"yaw", "pitch", "roll"}
    assert face["score"] > 0.5 and face["inter_eye_distance"] > 20
    x0, y0, x1, y1 = face["box"]
    assert all(x0 - 1 <= x <= x1 + 1 and y0 - 1 <= y <= y1 + 1 for x, y in face["landmarks"])
    assert r.stderr == ""


def test_no_face_is_a_valid_result(tmp_path):
    p = tmp_path / "wall.png"
    cv2.imwrite(str(p), np.full((300, 400, 3), 200, np.uint8))
    r = run("analyze", str(p), "--json")
    assert r.returncode == 0
    assert json.loads(r.stdout)["faces"] == []


@pytest.mark.parametrize("content", [b"not an image at all", b""])
def test_unusable_input_exits_2_with_one_line(tmp_path, content):
    p = tmp_path / "photo.jpg"
    p.write_bytes(content)
    r = run("analyze", str(p), "--json")
    assert r.returncode == 2
    assert r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_tiny_and_missing_exit_2(tmp_path):
    p = tmp_path / "tiny.png"
    cv2.imwrite(str(p), np.zeros((20, 20, 3), np.uint8))
    assert run("analyze", str(p)).returncode == 2
    r = run("analyze", str(tmp_path / "nope.jpg"))
    assert r.returncode == 2 and "no such file" in r.stderr


def test_video_gives_one_json_line_per_frame(tmp_path, sample_rgb):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    assert writer.isOpened()
    bgr = cv2.cvtColor(sample_rgb, cv2.COLOR_RGB2BGR)
    for i in range(8):
        frame = np.full((480, 640, 3), 120, np.uint8)
        if i != 5:  # the citizen steps out for one frame
            frame[0:480, 60 + 5 * i : 572 + 5 * i] = bgr[16:496]
        writer.write(frame)
    writer.release()
    r = run("analyze", str(path), "--json")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["frame"] for row in rows] == list(range(8))
    assert [len(row["faces"]) for row in rows] == [1, 1, 1, 1, 1, 0, 1, 1]
    xs = [row["faces"][0]["box"][0] for row in rows if row["faces"]]
    assert xs[4] - xs[0] == pytest.approx(20, abs=4)


def test_bad_config_names_the_key(tmp_path):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text("[vision]\nnum_threads = 'many'\n")
    r = run("analyze", "--sample", "--config", str(cfg))
    assert r.returncode == 2
    assert "vision.num_threads" in r.stderr and "Traceback" not in r.stderr
    cfg.write_text("[vision]\nnum_thread = 2\n")
    r = run("analyze", "--sample", "--config", str(cfg))
    assert r.returncode == 2 and "vision.num_thread: unknown key" in r.stderr


def test_common_options_work_before_and_after_the_subcommand(tmp_path):
    from kiosk.cli import build_parser

    parser = build_parser()
    before = parser.parse_args(["--state-dir", str(tmp_path), "--config", "a.toml", "analyze", "x"])
    after = parser.parse_args(["analyze", "x", "--state-dir", str(tmp_path), "--config", "a.toml"])
    for args in (before, after):
        assert (args.state_dir, args.config) == (str(tmp_path), "a.toml")
    r = run("--config", str(tmp_path / "absent.toml"), "analyze", "--sample")
    assert r.returncode == 2 and "config file not found" in r.stderr
