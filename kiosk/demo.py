"""`kiosk demo`: one whole session, unattended, on simulated hardware.

A simulated citizen (the bundled sample face) starts too far, off-centre, tilted, turned,
smiling and lit from one side; the session's prompts guide them, the lighting loop evens out the
light through the (mock) LEDs, the photo is taken when every check holds, composed and checked
by the photo engine, accepted, and handed over. Time is simulated (one frame = 1/fps), so the
demo runs faster than real time and gives the same prompts on every machine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kiosk.config import Config
from kiosk.errors import KioskError


class SimClock:
    """Simulated seconds, advanced by the demo loop one frame at a time."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@dataclass
class DemoResult:
    profile: str
    prompts: list[dict[str, Any]] = field(default_factory=list)
    states: list[dict[str, Any]] = field(default_factory=list)
    photo: str | None = None
    compliant: bool = False
    checks: list[dict[str, Any]] = field(default_factory=list)
    handover: dict[str, Any] | None = None
    city: str = ""
    number: str | None = None
    slip: str | None = None  # PNG rendered by the virtual printer from the bytes below
    escpos: str | None = None  # the raw ESC/POS byte stream sent to the printer
    sim_seconds: float = 0.0
    wall_seconds: float = 0.0
    frames: int = 0
    lights: dict[str, float] = field(default_factory=dict)  # LED levels at the capture
    lighting: dict[str, Any] = field(default_factory=dict)  # face balance when first seen, at capture

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "compliant": self.compliant,
            "photo": self.photo,
            "prompts": self.prompts,
            "states": self.states,
            "checks": self.checks,
            "handover": self.handover,
            "city": self.city,
            "number": self.number,
            "slip": self.slip,
            "escpos": self.escpos,
            "sim_seconds": round(self.sim_seconds, 2),
            "wall_seconds": round(self.wall_seconds, 2),
            "frames": self.frames,
            "lights": {k: round(v, 3) for k, v in self.lights.items()},
            "lighting": self.lighting,
        }


def run_demo(
    cfg: Config,
    out_dir: Path,
    profile: str | None = None,
    city: str | None = None,
    max_sim_s: float = 120.0,
    seed: int = 0,
    progress: Any = None,
) -> DemoResult:
    """Run one simulated session to the printed slip; KioskError when it does not get there.

    The receipt step is the real one (store, number authority from the configuration, slip) on
    the virtual printer, with its own store in ``out_dir/state`` so that a demo never mixes its
    numbers into a terminal's records.
    """
    from kiosk.capture.live import LiveLoop
    from kiosk.capture.photo_adapter import PhotoMaker, documents, thresholds
    from kiosk.capture.rules import load_rules
    from kiosk.capture.session import Session, State
    from kiosk.hw.lights import Lights, pin_factory
    from kiosk.hw.printer import open_printer
    from kiosk.receipt.wiring import ReceiptService, cities_for
    from kiosk.sim.scene import SimCamera, SimSubject
    from kiosk.vision import FaceAnalyzer

    wall0 = time.monotonic()
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KioskError(f"demo: cannot create {out_dir}: {exc.strerror or exc}") from None
    docs = documents(cities_for)
    profile = profile or cfg.session.default_profile
    doc = next((d for d in docs if d["id"] == profile), None)
    if doc is None:
        raise KioskError(f"demo: unknown document {profile!r} (known: {', '.join(d['id'] for d in docs)})")
    city = city or (doc["cities"][0] if doc["cities"] else "")
    if doc["cities"] and city not in doc["cities"]:
        raise KioskError(
            f"demo: {profile} receipts are not issued for {city!r} (cities: {', '.join(doc['cities'])})"
        )
    demo_cfg = replace(cfg, state_dir=out_dir / "state")
    receipts = ReceiptService(demo_cfg, printer=open_printer("virtual", "", cfg.receipt.paper_mm))
    clock = SimClock()
    lights = Lights.from_config(cfg.hardware, pin_factory(sim=True))
    analyzer = FaceAnalyzer(cfg.vision)
    subject = SimSubject(seed=seed)
    camera = SimCamera.from_config(
        cfg.hardware, levels=lambda: lights.levels, analyzer=analyzer, realtime=False, subject=subject
    )
    subject.leave()
    live = LiveLoop(analyzer, load_rules(), lights)
    result = DemoResult(profile=profile, city=city)
    photo_path = out_dir / "photo.jpg"

    def hand_over(jpeg: bytes, prof: str, chosen_city: str) -> dict[str, Any]:
        try:
            photo_path.write_bytes(jpeg)  # a copy to look at; the store keeps the record's own
        except OSError as exc:
            raise KioskError(f"demo: cannot write {photo_path}: {exc.strerror or exc}") from None
        return receipts.hand_over(jpeg, prof, chosen_city)

    session = Session(
        cfg.session, camera, live, PhotoMaker(cfg.vision), hand_over, docs, thresholds, clock=clock
    )

    def on_transition(old: State, new: State) -> None:
        result.states.append({"t": round(clock.t, 2), "state": new.value})
        if new is State.CHOOSE:
            subject.arrive()
        elif new is State.IDLE:
            subject.leave()
        elif new is State.CAPTURE:
            result.lights = lights.levels  # the light the photo is taken in
            m = live.lighting.last
            if m is not None:
                result.lighting["capture_balance"] = round(m.balance, 3)
                result.lighting["capture_exposure"] = round(m.mean, 1)
        elif new is State.REVIEW and session.photo is not None:
            result.checks = session.photo.checks
        if progress is not None:
            why = ""
            if old is State.CAPTURE and new is State.GUIDANCE and session.message:
                why = f"  photo refused: {session.message.get('en')}"
            progress(f"{clock.t:6.2f} s  [{new.value}]{why}")

    session.listeners.append(on_transition)
    dt = 1.0 / cfg.hardware.fps
    camera_dt = dt
    last_prompt: str | None = None
    session.post("start")
    started = False
    try:
        while clock.t < max_sim_s:
            st = session.state
            if st is State.CHOOSE and not started:
                session.post("choose", profile=profile, city=city)
            elif st is State.CONSENT:
                session.post("consent")
                started = True
            elif st is State.REVIEW:
                session.post("accept")
            session.step()
            m = live.lighting.last
            if m is not None and "first_balance" not in result.lighting:
                result.lighting.update(
                    first_balance=round(m.balance, 3),
                    first_exposure=round(m.mean, 1),
                    first_seen_s=round(clock.t, 2),
                )
            if (
                live.lighting.converged
                and "first_balance" in result.lighting
                and "converged_s" not in result.lighting
            ):
                result.lighting["converged_s"] = round(clock.t - result.lighting["first_seen_s"], 2)
                if progress is not None:
                    first = result.lighting["first_balance"]
                    leds = ", ".join(f"{k} {v:.2f}" for k, v in lights.levels.items())
                    progress(
                        f"{clock.t:6.2f} s  light evened out: face balance {first:+.2f} -> {m.balance:+.2f}, "
                        f"LEDs {leds}"
                    )
            g = live.last if session.state in (State.GUIDANCE, State.COUNTDOWN) else None
            prompt = g.prompt if g is not None else None
            subject.hear(prompt)
            if prompt is not None and prompt != last_prompt:
                text = g.text or {}
                result.prompts.append(
                    {"t": round(clock.t, 2), "id": prompt, "zh": text.get("zh"), "en": text.get("en")}
                )
                if progress is not None:
                    progress(f"{clock.t:6.2f} s  {text.get('zh')}  /  {text.get('en')}")
            last_prompt = prompt
            if session.state is State.DONE:
                break
            if session.state is State.FAILSAFE:
                msg = session.message or {}
                raise KioskError(f"demo: the session failed: {msg.get('detail') or msg.get('en')}")
            clock.t += camera_dt
        else:
            raise KioskError(f"demo: no accepted photo within {max_sim_s:g} simulated seconds")
        result.handover = session.result
        result.photo = str(photo_path)
        result.number = (session.result or {}).get("number")
        device = receipts.printer.device
        slip_path, escpos_path = out_dir / "slip.png", out_dir / "slip.escpos"
        try:
            escpos_path.write_bytes(bytes(device.received))
            slip_path.write_bytes(device.png())
        except OSError as exc:
            raise KioskError(f"demo: cannot write the slip: {exc.strerror or exc}") from None
        result.slip, result.escpos = str(slip_path), str(escpos_path)
        result.compliant = bool(result.checks) and all(
            c["passed"] for c in result.checks if c.get("severity", "error") == "error"
        )
        result.frames = camera.index
    finally:
        result.sim_seconds = clock.t
        result.wall_seconds = time.monotonic() - wall0
        lights.close()
        camera.close()
        receipts.close()
    return result
