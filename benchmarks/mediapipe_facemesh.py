"""Baseline: MediaPipe 0.10.21 face mesh speed and stability on the moving-face stream.

Why: kiosk.vision's tracker must be compared with what it replaces, on the same frames and machine.
Run with the reference venv only (MediaPipe is never a project dependency):

    /work/mpref/bin/python benchmarks/mediapipe_facemesh.py [--frames N] [--dump-landmarks lm.npy] [--refine]
    /work/mpref/bin/python benchmarks/mediapipe_facemesh.py --serve [--refine]   (see serve())

Prints one JSON object. Times cover ``FaceMesh.process`` only (frames are generated beforehand);
the first ``--warmup`` frames of each mode are processed but left out of the statistics.
``load_s`` is the FaceMesh constructor plus the first ``process`` call (when the models really load).
``--dump-landmarks`` saves the video-mode landmarks of every frame, (N, 468, 2) float32 pixels,
NaN where no face was found.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import moving_face  # noqa: E402


def stats(ms: list[float]) -> dict[str, float]:
    """Mean, median and 95th percentile, in milliseconds."""
    a = np.asarray(ms)
    return {
        "mean": round(float(a.mean()), 3),
        "median": round(float(np.median(a)), 3),
        "p95": round(float(np.percentile(a, 95)), 3),
    }


def run(
    mp, frames: list[np.ndarray], static: bool, refine: bool = False, cpu: list | None = None
) -> tuple[list[float], np.ndarray, float]:
    """Process every frame with one FaceMesh; return per-frame ms, landmarks, constructor seconds.

    The constructor only starts the graph; the TFLite models are opened inside the first
    ``process`` call, so the first frame's time is the real cold-start cost. ``cpu`` collects
    each frame's CPU time (all threads of the process): less sensitive to a busy machine.
    """
    cpu = [] if cpu is None else cpu
    h, w = frames[0].shape[:2]
    t0 = time.perf_counter()
    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=static, max_num_faces=1, refine_landmarks=refine)
    load_s = time.perf_counter() - t0
    times = []
    landmarks = np.full((len(frames), 468, 2), np.nan, np.float32)
    with mesh:
        for k, frame in enumerate(frames):
            t, c = time.perf_counter(), time.process_time()
            result = mesh.process(frame)
            dt = (time.perf_counter() - t) * 1000.0
            times.append(dt)
            cpu.append((time.process_time() - c) * 1000.0)
            if result.multi_face_landmarks:
                pts = result.multi_face_landmarks[0].landmark
                landmarks[k] = [(p.x * w, p.y * h) for p in list(pts)[:468]]  # refine adds 10 iris points
    return times, landmarks, load_s


def pace(tick: float, period: float) -> float:
    """Wait for the next frame of a camera delivering one every ``period`` s (0: no wait)."""
    if period <= 0:
        return tick
    tick = max(tick + period, time.perf_counter())
    time.sleep(max(0.0, tick - time.perf_counter()))
    return tick


def serve(mp, frames: list[np.ndarray], refine: bool) -> None:
    """Answer timing requests on stdin, one JSON line each on stdout, for interleaved benchmarks.

    ``chunk A B [FPS]``: process frames[A:B] with the current video-mode FaceMesh (the stream goes
    on where it was), frames paced as a camera at FPS when given, and reply per-frame wall and CPU
    milliseconds; ``reset``: a new FaceMesh (a
    new stream); ``landmarks PATH``: save the last landmarks of every frame, (N, 468, 2) .npy.
    The caller alternates chunks of its own pipeline with these, so that load from other
    processes on a shared machine falls on both alike.
    """
    h, w = frames[0].shape[:2]
    landmarks = np.full((len(frames), 468, 2), np.nan, np.float32)

    def new_mesh():
        face_mesh = mp.solutions.face_mesh
        return face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=refine)

    mesh = new_mesh()
    print(json.dumps({"ready": True, "version": mp.__version__}), flush=True)
    for line in sys.stdin:
        cmd, *args = line.split()
        reply: dict = {"ok": True}
        if cmd == "chunk":
            ms, cpu = [], []
            period = 1.0 / float(args[2]) if len(args) > 2 and float(args[2]) > 0 else 0.0
            tick = time.perf_counter()
            for k in range(int(args[0]), int(args[1])):
                tick = pace(tick, period)
                t, c = time.perf_counter(), time.process_time()
                result = mesh.process(frames[k])
                ms.append((time.perf_counter() - t) * 1000.0)
                cpu.append((time.process_time() - c) * 1000.0)
                if result.multi_face_landmarks:
                    pts = list(result.multi_face_landmarks[0].landmark)[:468]
                    landmarks[k] = [(p.x * w, p.y * h) for p in pts]
                else:
                    landmarks[k] = np.nan
            reply = {"ms": ms, "cpu": cpu}
        elif cmd == "reset":
            mesh.close()
            mesh = new_mesh()
        elif cmd == "landmarks":
            np.save(args[0], landmarks)
        print(json.dumps(reply), flush=True)
    mesh.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dump-landmarks", type=Path, help="write video-mode landmarks (N, 468, 2) .npy")
    parser.add_argument(
        "--refine", action="store_true", help="refine_landmarks=True: the attention mesh, eyelids and irises"
    )
    parser.add_argument("--serve", action="store_true", help="answer chunk requests on stdin (see serve)")
    args = parser.parse_args()

    t0 = time.perf_counter()
    import mediapipe as mp  # timed: part of what a cold start costs

    import_s = time.perf_counter() - t0
    frames = list(moving_face.frames(n=args.frames, seed=args.seed))
    if args.serve:
        serve(mp, frames, args.refine)
        return
    video_cpu: list[float] = []
    video_all, video_lm, load_video = run(mp, frames, static=False, refine=args.refine, cpu=video_cpu)
    static_all, static_lm, load_static = run(mp, frames, static=True, refine=args.refine)
    video_ms, static_ms = video_all[args.warmup :], static_all[args.warmup :]

    found = ~np.isnan(video_lm[:, 0, 0])
    # Mean frame-to-frame landmark motion, and distance to the still-image reference landmarks of
    # astronaut.png carried along the known motion: smoothness and accuracy measures for trackers.
    truth = moving_face.poses(n=args.frames, seed=args.seed)
    reference = Path(__file__).resolve().parent.parent / "tests/fixtures/reference/landmarks.json"
    still = np.array(json.loads(reference.read_text())["images"]["astronaut.png"]["faces"][0]["landmarks"])
    expected = np.einsum("nij,kj->nki", truth[:, :, :2], still) + truth[:, None, :, 2]
    vs_truth = np.linalg.norm(video_lm - expected, axis=2).mean(axis=1)
    both = found[1:] & found[:-1]
    step = np.linalg.norm(np.diff(video_lm, axis=0), axis=2).mean(axis=1)[both]
    face_w = np.hypot(truth[:, 0, 0], truth[:, 0, 1]) * moving_face.FACE_WIDTH
    static_vs_video = np.linalg.norm(video_lm - static_lm, axis=2).mean(axis=1)
    out = {
        "impl": "mediapipe",
        "refine_landmarks": args.refine,
        "version": mp.__version__,
        "frames": args.frames,
        "size": list(frames[0].shape[1::-1]),
        "warmup": args.warmup,
        "video_ms_per_frame": stats(video_ms),
        "video_cpu_ms_per_frame": stats(video_cpu[args.warmup :]),
        "static_ms_per_frame": stats(static_ms),
        "load_s": round(load_video + video_all[0] / 1000.0, 3),
        "load_s_static": round(load_static + static_all[0] / 1000.0, 3),
        "import_s": round(import_s, 3),
        "first_frame_ms": {"video": round(video_all[0], 1), "static": round(static_all[0], 1)},
        "faces_found_fraction": round(float(found.mean()), 4),
        "static_faces_found_fraction": round(float((~np.isnan(static_lm[:, 0, 0])).mean()), 4),
        "video_mean_step_px": round(float(step.mean()), 3) if step.size else None,
        "video_vs_carried_reference_px": {
            "mean": round(float(np.nanmean(vs_truth)), 3),
            "max": round(float(np.nanmax(vs_truth)), 3),
        },
        "video_vs_static_mean_px": round(float(np.nanmean(static_vs_video)), 3),
        "true_face_width_px": [round(float(face_w.min()), 1), round(float(face_w.max()), 1)],
    }
    if args.dump_landmarks is not None:
        np.save(args.dump_landmarks, video_lm)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
