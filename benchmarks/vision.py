#!/usr/bin/env python3
"""Per-frame time of the tracking pipeline next to MediaPipe's FaceMesh on the same frames.

    python benchmarks/vision.py --json [--frames 300] [--reference-python /work/mpref/bin/python]

Our pipeline (detector when lost + face mesh on the tracked ROI + pose + measures) runs in this
process; its in-process baseline is the same pipeline in still mode (detector on every frame).
The live pipeline *with eye state* (``FaceAnalyzer.track`` as kiosk/capture/live.py calls it,
with the kiosk's vision config: the mesh every frame, the iris model on one eye every
``eye_read_every`` frames, the eyes in turn, each eye's eyelid contour, aperture and open/closed)
is compared with MediaPipe's FaceMesh with
refine_landmarks=True, the mode that follows the eyelids too (its attention mesh), timed in
alternating chunks (see ``interleaved_eyes``): ``eye_state`` with frames back to back (the
headline ratio, ``eyes_speedup_vs_mediapipe_refine_video``), ``eye_state_paced`` with frames
paced as a 30 fps camera delivers them; ``ours_serial`` is the same work with the eye read on
the caller's thread (does the second thread pay?); a one-line summary of each goes to stderr.
With an eye read every other frame the per-frame times have two modes, so ``*_mean`` ratios
(mean time per frame: what the CPU pays on average) are reported beside the median ones.
MediaPipe 0.10.21 cannot share a process with numpy 2, so it runs the identical frames in its own
virtualenv (benchmarks/mediapipe_facemesh.py) and the ratio of the two medians is reported.
Also: model load time, and landmark agreement with MediaPipe's video mode when it is available.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Future
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import moving_face  # noqa: E402
from mediapipe_facemesh import pace, stats  # noqa: E402  (the same on both sides)

from kiosk.config import VisionConfig  # noqa: E402
from kiosk.vision import FaceAnalyzer  # noqa: E402


def time_pipeline(
    frames: list[np.ndarray], threads: int, mode: str, warmup: int = 10, eyes: bool = False
) -> dict:
    t0 = time.perf_counter()
    analyzer = FaceAnalyzer(VisionConfig(num_threads=threads, iris=eyes))
    if eyes:
        analyzer.iris_model  # noqa: B018  (loaded with the others: part of the load time)
    load_s = time.perf_counter() - t0
    ms, found, detector_runs, landmarks = [], 0, 0, []
    real = analyzer.detector.detect

    def counting(rgb):
        nonlocal detector_runs
        detector_runs += 1
        return real(rgb)

    analyzer.detector.detect = counting
    cpu = []
    for i, frame in enumerate(frames):
        t, c = time.perf_counter(), time.process_time()
        if mode == "video":
            a = analyzer.track(frame, iris=eyes)
        else:
            a = analyzer.analyze(frame, iris=False, full_range=False)
        dt = (time.perf_counter() - t) * 1000
        if i >= warmup:
            ms.append(dt)
            cpu.append((time.process_time() - c) * 1000)
        found += bool(a.faces)
        landmarks.append(a.faces[0].landmarks[:, :2] if a.faces else np.full((468, 2), np.nan))
    return {
        "threads": threads,
        "eye_state": eyes,
        "ms_per_frame": stats(ms),
        "cpu_ms_per_frame": stats(cpu),
        "load_s": round(load_s, 4),
        "faces_found_fraction": round(found / len(frames), 4),
        "detector_runs": detector_runs,
        "_landmarks": np.asarray(landmarks),
    }


def reference(python: str, n: int, refine: bool = False) -> tuple[dict | None, np.ndarray | None]:
    if not python or not Path(python).exists():
        return None, None
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / "lm.npy"
        cmd = [python, str(HERE / "mediapipe_facemesh.py"), "--frames", str(n), "--dump-landmarks", str(dump)]
        r = subprocess.run(cmd + (["--refine"] if refine else []), capture_output=True, text=True)
        if r.returncode != 0:
            return {"error": r.stderr.strip().splitlines()[-1:]}, None
        return json.loads(r.stdout.strip().splitlines()[-1]), np.load(dump)


class _Reference:
    """MediaPipe's FaceMesh in its own virtualenv, timing chunks of the stream on request."""

    def __init__(self, python: str, n: int, refine: bool):
        cmd = [python, str(HERE / "mediapipe_facemesh.py"), "--serve", "--frames", str(n)]
        self.log = tempfile.TemporaryFile("w+")  # its runtime's chatter; the last line if it fails
        self.proc = subprocess.Popen(
            cmd + (["--refine"] if refine else []),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        self.ready = self._reply()

    def _reply(self) -> dict:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):  # anything else is the runtime's own chatter
                return json.loads(line)
        self.log.seek(0)
        last = (self.log.read().strip().splitlines() or ["no message"])[-1]
        raise RuntimeError(f"the MediaPipe reference process ended: {last}")

    def ask(self, request: str) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(request + "\n")
        self.proc.stdin.flush()
        return self._reply()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.log.close()


class _Inline:
    """An executor that runs the call at once on the caller's thread."""

    def submit(self, fn, *args) -> Future:
        done: Future = Future()
        done.set_result(fn(*args))
        return done


class _SerialEyes(FaceAnalyzer):
    """The same tracked pipeline with the eye read on the caller's thread: does the second pay?"""

    def _pool(self) -> _Inline:  # type: ignore[override]
        return _Inline()


def _count_invokes(analyzer: FaceAnalyzer, invokes: dict) -> None:
    """Count the tracked mesh's and iris model's runs while ``invokes["counting"]`` is set."""
    for key, m in zip(("mesh", "iris"), analyzer.tracking_models(), strict=True):
        real = m.model.run_uint8

        def run(*a, _real=real, _key=key, **k):
            invokes[_key] += invokes["counting"]
            return _real(*a, **k)

        m.model.run_uint8 = run


def interleaved_eyes(
    frames: list[np.ndarray],
    python: str,
    threads: int,
    rounds: int,
    chunk: int = 20,
    warmup: int = 10,
    fps: float = 0.0,
    serial: bool = False,
    eye_read_every: int | None = None,
) -> dict:
    """The live pipeline with eye state against FaceMesh(refine_landmarks=True), chunk by chunk in turn.

    Both follow the whole stream as a video (ours: ``FaceAnalyzer.track`` with the kiosk's vision
    config, as kiosk/capture/live.py calls it; MediaPipe: video mode in its own process). Chunks of
    ``chunk`` frames go to each in turn, the order rotated every chunk, so that the load of a
    shared machine falls on all alike; each round restarts the streams. Per-frame wall and CPU
    time (all threads of each process); the first ``warmup`` frames of a round are left out.
    ``fps`` > 0 paces every side's frames as a camera does (the kiosk's live loop waits for each
    frame); on a busy machine back-to-back frames (``fps`` 0) and paced ones do not tell the same.
    ``serial`` adds ``ours_serial`` to the turns: the same work with the eye read on one thread.
    """
    ref = _Reference(python, len(frames), refine=True)
    every = VisionConfig().eye_read_every if eye_read_every is None else eye_read_every
    cfg = VisionConfig(num_threads=threads, eye_read_every=every)
    analyzers = {"ours": FaceAnalyzer(cfg)} | ({"ours_serial": _SerialEyes(cfg)} if serial else {})
    invokes = {"mesh": 0, "iris": 0, "counting": False}  # the live pipeline's model runs, timed frames
    _count_invokes(analyzers["ours"], invokes)  # (this loads the tracking models before timing)
    for a in analyzers.values():
        a.tracking_models()
    sides = [*analyzers, "mediapipe_refine_landmarks"]
    times: dict[str, dict[str, list[float]]] = {k: {"ms": [], "cpu": []} for k in sides}
    per_chunk: dict[str, list[float]] = {k: [] for k in analyzers}
    load = [round(v, 2) for v in os.getloadavg()]
    lm, timed_frames = np.full((len(frames), 468, 2), np.nan), 0
    period = 1.0 / fps if fps > 0 else 0.0
    try:
        for r in range(rounds):
            for a in analyzers.values():
                a.reset()
            if r:
                ref.ask("reset")
            for ci, a in enumerate(range(0, len(frames), chunk)):
                b = min(a + chunk, len(frames))
                keep = slice(max(0, warmup - a), None)
                turn = (ci + r) % len(sides)
                got: dict[str, tuple[list[float], list[float]]] = {}
                for side in sides[turn:] + sides[:turn]:
                    if side not in analyzers:
                        reply = ref.ask(f"chunk {a} {b} {fps}")
                        got[side] = reply["ms"][keep], reply["cpu"][keep]
                        continue
                    ms, cpu, tick = [], [], time.perf_counter()
                    for k in range(a, b):
                        tick = pace(tick, period)
                        live = side == "ours" and k >= warmup
                        invokes["counting"] = live
                        timed_frames += live
                        t, c = time.perf_counter(), time.process_time()
                        faces = analyzers[side].track(frames[k]).faces
                        ms.append((time.perf_counter() - t) * 1000)
                        cpu.append((time.process_time() - c) * 1000)
                        if side == "ours":
                            lm[k] = faces[0].landmarks[:, :2] if faces else np.nan
                    got[side] = ms[keep], cpu[keep]
                if not got["ours"][0]:
                    continue
                for side, (ms, cpu) in got.items():
                    times[side]["ms"] += ms
                    times[side]["cpu"] += cpu
                mp_median = np.median(got["mediapipe_refine_landmarks"][0])
                for side in analyzers:
                    per_chunk[side].append(float(mp_median / np.median(got[side][0])))
        with tempfile.TemporaryDirectory() as tmp:
            ref.ask(f"landmarks {Path(tmp) / 'lm.npy'}")
            ref_lm = np.load(Path(tmp) / "lm.npy")
    finally:
        ref.close()
    summary = {
        k: {"ms_per_frame": stats(v["ms"]), "cpu_ms_per_frame": stats(v["cpu"])} for k, v in times.items()
    }
    theirs = summary["mediapipe_refine_landmarks"]
    out: dict = {
        "method": f"chunks of {chunk} frames in turn, {rounds} rounds, each side following the stream, "
        + (f"frames paced at {fps:g} fps" if fps > 0 else "frames back to back"),
        "num_threads": threads,
        "eye_read_every": every,
        "iris_invokes_per_frame": round(invokes["iris"] / max(timed_frames, 1), 3),
        "mesh_invokes_per_frame": round(invokes["mesh"] / max(timed_frames, 1), 3),
        **summary,
    }
    out["mediapipe_refine_landmarks"]["version"] = ref.ready.get("version")
    for side in analyzers:
        prefix = "" if side == "ours" else "serial_"
        mine, q = summary[side], np.percentile(per_chunk[side], [25, 50, 75])
        out[prefix + "speedup_wall"] = round(
            theirs["ms_per_frame"]["median"] / mine["ms_per_frame"]["median"], 2
        )
        out[prefix + "speedup_cpu"] = round(
            theirs["cpu_ms_per_frame"]["median"] / mine["cpu_ms_per_frame"]["median"], 2
        )
        for kind, key in (("wall", "ms_per_frame"), ("cpu", "cpu_ms_per_frame")):
            out[f"{prefix}speedup_{kind}_mean"] = round(theirs[key]["mean"] / mine[key]["mean"], 2)
        out[prefix + "speedup_wall_per_chunk"] = {
            k: round(v, 2) for k, v in zip(("p25", "median", "p75"), q, strict=True)
        }
    out["landmark_error_vs_mediapipe_refine"] = _nme(lm, ref_lm)
    out["load_average_1_5_15min"] = {"start": load, "end": [round(v, 2) for v in os.getloadavg()]}
    return out


def _nme(lm: np.ndarray, ref_lm: np.ndarray) -> dict:
    """Per-frame mean landmark distance over the outer-eye-corner distance (33-263)."""
    iod = np.linalg.norm(ref_lm[:, 263] - ref_lm[:, 33], axis=1)
    err = np.nanmean(np.linalg.norm(lm - ref_lm, axis=2), axis=1) / iod
    return {"mean_nme": round(float(np.nanmean(err)), 4), "max_nme": round(float(np.nanmax(err)), 4)}


def _serial_note(eyes: dict) -> str:
    if "ours_serial" not in eyes:
        return ""
    serial = eyes["ours_serial"]
    return (
        f"; the eye read on the same thread instead: {serial['ms_per_frame']['median']:.2f} ms "
        f"({serial['cpu_ms_per_frame']['median']:.2f} ms CPU), {eyes['serial_speedup_wall']:.2f}x "
        f"(means: {serial['ms_per_frame']['mean']:.2f} ms, {serial['cpu_ms_per_frame']['mean']:.2f} ms CPU)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds; the best median of each counts"
    )
    ap.add_argument(
        "--reference-python", default=os.environ.get("MEDIAPIPE_PYTHON", "/work/mpref/bin/python")
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=VisionConfig().num_threads,
        help="vision num_threads (the kiosk's default)",
    )
    ap.add_argument(
        "--no-serial", action="store_true", help="leave out the eye read on one thread (ours_serial)"
    )
    ap.add_argument(
        "--fps", type=float, default=30.0, help="camera rate of the paced eye-state comparison (0: skip it)"
    )
    ap.add_argument(
        "--eye-read-every",
        type=int,
        default=VisionConfig().eye_read_every,
        help="frames from one eye read to the next on the tracked path (the kiosk's default)",
    )
    ap.add_argument(
        "--chunk", type=int, default=20, help="frames per turn in the interleaved eye-state comparison"
    )
    args = ap.parse_args()
    frames = list(moving_face.frames(args.frames))
    # Rounds interleave ours and MediaPipe so that load from other processes hits both alike;
    # the best median per configuration is reported (noise only ever adds time).
    rounds: list[dict] = []
    for _ in range(max(1, args.rounds)):
        runs = {f"video_{t}t": time_pipeline(frames, t, "video") for t in (1, 2)}
        runs["still_2t"] = time_pipeline(frames, 2, "still")
        ref, ref_lm = reference(args.reference_python, args.frames)
        rounds.append({"runs": runs, "ref": ref, "ref_lm": ref_lm})

    def best(key: str) -> dict:
        return min((r["runs"][key] for r in rounds), key=lambda v: v["ms_per_frame"]["median"])

    ours = {k: best(k) for k in rounds[0]["runs"]}
    video = min((ours["video_1t"], ours["video_2t"]), key=lambda r: r["ms_per_frame"]["median"])
    result = {
        "frames": len(frames),
        "frame_size": [640, 480],
        "rounds": len(rounds),
        "ours": {k: {kk: vv for kk, vv in v.items() if not kk.startswith("_")} for k, v in ours.items()},
        "tracking_speedup_vs_detect_every_frame": round(
            ours["still_2t"]["ms_per_frame"]["median"] / video["ms_per_frame"]["median"], 2
        ),
    }
    refs = [r["ref"] for r in rounds if r["ref"] and "video_ms_per_frame" in r["ref"]]
    if refs:
        mp_best = min(refs, key=lambda r: r["video_ms_per_frame"]["median"])
        result["mediapipe"] = mp_best
        result["speedup_vs_mediapipe_video"] = round(
            mp_best["video_ms_per_frame"]["median"] / video["ms_per_frame"]["median"], 2
        )
        result["speedup_per_round"] = [
            round(
                r["ref"]["video_ms_per_frame"]["median"]
                / min(
                    r["runs"]["video_1t"]["ms_per_frame"]["median"],
                    r["runs"]["video_2t"]["ms_per_frame"]["median"],
                ),
                2,
            )
            for r in rounds
            if r["ref"] and "video_ms_per_frame" in r["ref"]
        ]
    else:
        result["mediapipe"] = (
            rounds[0]["ref"] or "not run: no reference virtualenv (see tests/fixtures/make_reference.py)"
        )
    ref_lm = rounds[0]["ref_lm"]
    if ref_lm is not None:
        result["landmark_error_vs_mediapipe_video"] = _nme(video["_landmarks"], ref_lm)
    if Path(args.reference_python).exists():
        # back to back (throughput: the headline ratio), then paced as the kiosk's camera delivers
        modes = [("eye_state", 0.0)] + ([("eye_state_paced", args.fps)] if args.fps > 0 else [])
        for key, fps in modes:
            eyes = interleaved_eyes(
                frames,
                args.reference_python,
                args.threads,
                max(1, args.rounds),
                args.chunk,
                fps=fps,
                serial=not args.no_serial,
                eye_read_every=args.eye_read_every,
            )
            result[key] = eyes
            o, m = eyes["ours"], eyes["mediapipe_refine_landmarks"]
            print(
                f"eye state, tracked, {eyes['method'].rsplit(', ', 1)[-1]}: ours "
                f"{o['ms_per_frame']['median']:.2f} ms/frame ({o['cpu_ms_per_frame']['median']:.2f} ms CPU), "
                f"MediaPipe refine_landmarks {m['ms_per_frame']['median']:.2f} ms "
                f"({m['cpu_ms_per_frame']['median']:.2f} ms CPU): {eyes['speedup_wall']:.2f}x wall "
                f"(per chunk {eyes['speedup_wall_per_chunk']['p25']:.2f}-"
                f"{eyes['speedup_wall_per_chunk']['p75']:.2f}), {eyes['speedup_cpu']:.2f}x CPU "
                f"(means: {eyes['speedup_wall_mean']:.2f}x wall, "
                f"{eyes['speedup_cpu_mean']:.2f}x CPU); NME "
                f"{eyes['landmark_error_vs_mediapipe_refine']['mean_nme']:.2%}; load average "
                f"{eyes['load_average_1_5_15min']['start'][0]:.1f}-{eyes['load_average_1_5_15min']['end'][0]:.1f}"
                + _serial_note(eyes),
                file=sys.stderr,
            )
        result["eyes_speedup_vs_mediapipe_refine_video"] = result["eye_state"]["speedup_wall"]
        result["eyes_cpu_speedup_vs_mediapipe_refine_video"] = result["eye_state"]["speedup_cpu"]
        if "eye_state_paced" in result:
            result["eyes_speedup_paced"] = result["eye_state_paced"]["speedup_wall"]
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
