"""`kiosk demo`: one whole session, unattended, on simulated hardware.

A simulated citizen (the bundled sample face) starts too far, off-centre, tilted, turned,
smiling and lit from one side; the session's prompts guide them, the lighting loop evens out the
light through the (mock) LEDs, the photo is taken when every check holds, composed and checked
by the photo engine, accepted, and handed over. Time is simulated (one frame = 1/fps), so the
demo runs faster than real time and gives the same prompts on every machine.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kiosk.config import Config
from kiosk.errors import InputError, KioskError

LIMIT_S = 90.0  # simulated seconds of guidance before the demo (and its session) gives up
HELP = (
    "a whole simulated session on the bundled sample face (or [hardware] sim_face); it fails when no "
    f"photo is accepted within {LIMIT_S:g} simulated seconds"
)


class DemoFailed(KioskError):
    """The simulated session did not reach a printed slip; ``result`` says how far it got and why."""

    def __init__(self, message: str, result: DemoResult):
        super().__init__(message)
        self.result = result


@dataclass
class DemoResult:
    profile: str
    outcome: str = "running"  # done | failsafe | timeout
    reason: str | None = None  # why the session failed (None when done)
    face: str = ""  # the face image the simulated camera shows
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
    spoken: list[dict[str, Any]] | None = None  # with --voice: what the citizen heard, OUT/voice/*.wav
    voice: dict[str, Any] | None = None  # with --voice: on or off (and why), renders and cache hits
    returning: bool = False  # --returning SLIP.png: a returning citizen scans the slip
    scanned_number: str | None = None  # what the terminal read from the slip
    review: dict[str, Any] | None = None  # what it showed: the review, or why not ({refused, message})
    retake: dict[str, Any] | None = None  # after a rejection: {number, compliant, photo, slip}

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "reason": self.reason,
            "profile": self.profile,
            "face": self.face,
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
            **({"spoken": self.spoken, "voice": self.voice} if self.spoken is not None else {}),
            **(
                {"scanned_number": self.scanned_number, "review": self.review, "retake": self.retake}
                if self.returning
                else {}
            ),
        }


def _document(cfg: Config, profile: str | None, city: str | None) -> tuple[str, str]:
    """The document and city the demo asks for; unknown ones are bad input (exit 2)."""
    from kiosk.capture.photo_adapter import documents
    from kiosk.receipt.cities import resolve
    from kiosk.receipt.wiring import cities_for_config

    docs = documents(cities_for_config(cfg))  # the configured province (receipt.layouts_file)
    profile = profile or cfg.session.default_profile
    doc = next((d for d in docs if d["id"] == profile), None)
    if doc is None:
        raise InputError(f"demo: unknown document {profile!r} (known: {', '.join(d['id'] for d in docs)})")
    city = city or (doc["cities"][0] if doc["cities"] else "")
    if doc["cities"]:  # as citizens type it (惠州, huizhou): the session's own resolver
        chosen = resolve(city, {c: doc["city_names"].get(c, {}) for c in doc["cities"]})
        if chosen is None:
            raise InputError(
                f"demo: {profile} receipts are not issued for {city!r}; "
                f"`kiosk receipt cities --profile {profile}` lists the cities"
            )
        city = chosen
    return profile, city


def run_demo(
    cfg: Config,
    out_dir: Path,
    profile: str | None = None,
    city: str | None = None,
    max_sim_s: float = LIMIT_S,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    wall_clock: Any = None,
    voice: bool = False,
    lang: str = "zh",
    large_text: bool = False,
    returning: Path | None = None,
) -> DemoResult:
    """Run one simulated session to the printed slip; DemoFailed (with the result so far) when it
    does not get there, InputError for an unknown document or city.

    The station is the one `kiosk run` builds (kiosk.station.build_station), simulated, on a
    simulated clock, with the virtual printer and its own store in ``out_dir/state`` so that a demo
    never mixes its numbers into a terminal's records. The session's own guidance timeout is
    ``max_sim_s``: the limit the help names is the one that stops it. With ``voice`` the station's
    voice speaks as on a terminal (silently) and what the citizen heard is written to OUT/voice.
    ``lang`` and ``large_text`` are what the citizen chooses on the idle screen before starting.
    With ``returning`` (a slip's PNG) the citizen instead scans that slip ("Have a slip? Scan it"):
    the simulated camera shows it, the terminal reads the number and shows its review, and after a
    rejection the citizen takes the free retake under the same number.
    """
    from kiosk.capture.session import State
    from kiosk.station import SimClock, build_station, open_printer

    wall0 = time.monotonic()
    out_dir = Path(out_dir)
    profile, city = _document(cfg, profile, city)
    slip_png: bytes | None = None
    if returning is not None:
        try:
            slip_png = Path(returning).read_bytes()
        except OSError as exc:
            raise InputError(f"demo: --returning: {returning}: {exc.strerror or exc}") from None
        if not slip_png.startswith(b"\x89PNG") and not slip_png.startswith(b"\xff\xd8"):
            raise InputError(f"demo: --returning: {returning} is not a PNG or JPEG image")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KioskError(f"demo: cannot create {out_dir}: {exc.strerror or exc}") from None
    demo_cfg = replace(
        cfg, state_dir=out_dir / "state", session=replace(cfg.session, guidance_timeout_s=max_sim_s)
    )
    clock = SimClock()
    photo_path = out_dir / "photo.jpg"

    def keep_a_copy(hand_over: Any) -> Any:
        def wrapped(jpeg: bytes, prof: str, chosen_city: str) -> dict[str, Any]:
            try:
                photo_path.write_bytes(jpeg)  # a copy to look at; the store keeps the record's own
            except OSError as exc:
                raise KioskError(f"demo: cannot write {photo_path}: {exc.strerror or exc}") from None
            return hand_over(jpeg, prof, chosen_city)

        return wrapped

    station = build_station(
        demo_cfg,
        sim=True,
        clock=clock,
        realtime=False,
        printer=open_printer("virtual", "", cfg.receipt.paper_mm),
        hand_over=keep_a_copy,
        seed=seed,
        wall_clock=wall_clock,  # kiosk.clock.WallClock (tests); None: the machine's clock, trusted
        voice=voice,
    )
    session, live, lights, receipts = station.session, station.live, station.lights, station.receipts
    result = DemoResult(profile=profile, city=city, face=station.face_name, returning=slip_png is not None)
    if slip_png is not None and station.citizen is not None:
        station.citizen.slip = slip_png  # held up to the camera when the scan starts
    if progress is not None:
        progress(f"kiosk demo: a simulated session on {result.face}, document {profile}, city {city}")

    def on_transition(old: State, new: State) -> None:
        result.states.append({"t": round(clock.t, 2), "state": new.value})
        if new is State.CAPTURE:
            result.lights = lights.levels  # the light the photo is taken in
            m = live.lighting.last
            if m is not None:
                result.lighting["capture_balance"] = round(m.balance, 3)
                result.lighting["capture_exposure"] = round(m.mean, 1)
        elif new is State.REVIEW and session.photo is not None:
            result.checks = [c.to_json() for c in session.photo.checks]
            result.compliant = session.photo.compliant
        elif new is State.HANDOVER and session.retake_of is not None and session.photo is not None:
            try:
                photo_path.write_bytes(session.photo.jpeg or b"")  # the retake's copy to look at
            except OSError as exc:
                raise KioskError(f"demo: cannot write {photo_path}: {exc.strerror or exc}") from None
        elif new is State.SCANNED:
            scan = session.scan or {}
            result.scanned_number = scan.get("number")
            result.review = scan.get("review") or {
                "refused": scan.get("refused"), "message": scan.get("message")
            }
        if progress is not None:
            why = ""
            if old is State.CAPTURE and new is State.GUIDANCE and session.message:
                why = f"  photo refused: {session.message.get('en')}"
            progress(f"{clock.t:6.2f} s  [{new.value}]{why}")

    session.listeners.append(on_transition)
    dt = 1.0 / cfg.hardware.fps
    last_prompt: str | None = None
    if lang != "zh":
        session.post("lang", lang=lang)
    if large_text:
        session.post("large_text")
    session.post("start" if slip_png is None else "scan")
    started = slip_png is not None
    # a hard bound on the loop, past the session's own timeouts (choose, consent, review, guidance)
    hard_stop = max_sim_s + 2 * cfg.session.idle_timeout_s + cfg.session.failsafe_s
    try:
        while True:
            st = session.state
            if st is State.CHOOSE and not started:
                session.post("choose", profile=profile, city=city)
            elif st is State.CONSENT:
                session.post("consent")
                started = True
            elif st is State.REQUIREMENTS:  # the citizen reads what the photo needs and goes on
                session.post("accept")
            elif st is State.REVIEW:
                session.post("accept")
            elif st is State.SCANNED:  # the review shown: a rejected photo is retaken for free
                if (result.review or {}).get("retake"):
                    session.post("retake")
                else:
                    break
            station.step()  # the session's turn, then the simulated citizen reads the screen
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
            if started and slip_png is not None and session.state is State.IDLE and result.review:
                break  # a refused scan that went back to idle
            if session.state is State.FAILSAFE:
                msg = session.message or {}
                result.outcome, result.reason = "failsafe", str(msg.get("detail") or msg.get("en"))
                raise DemoFailed(f"demo: the session failed: {result.reason}", result)
            if (started and session.state is State.IDLE) or clock.t >= hard_stop:
                result.outcome = "timeout"
                result.reason = f"no accepted photo within {max_sim_s:g} simulated seconds"
                raise DemoFailed(f"demo: {result.reason}", result)
            clock.t += dt
        result.outcome = "done"
        result.frames = station.camera.index
        if slip_png is not None and session.state is not State.DONE:
            result.outcome = "scanned" if (result.review or {}).get("state") else "refused"
            return result
        result.handover = session.result
        result.photo = str(photo_path)
        result.number = (session.result or {}).get("number")
        device = receipts.printer.device
        slip_path, escpos_path = out_dir / "slip.png", out_dir / "slip.escpos"
        try:
            escpos_path.write_bytes(bytes(device.received))
            if device.slips():
                slip_path.write_bytes(device.png())
        except OSError as exc:
            raise KioskError(f"demo: cannot write the slip: {exc.strerror or exc}") from None
        result.slip, result.escpos = str(slip_path), str(escpos_path)
        if slip_png is not None:
            done = session.result or {}
            result.retake = {
                "number": done.get("number"),
                "compliant": result.compliant,
                "photo": result.photo,
                "slip": result.slip if done.get("printed") else None,
                "attempt": done.get("attempt"),
                "failed": bool(done.get("failed")),
                "message": done.get("message"),
            }
            if done.get("failed"):
                result.outcome = "retake_failed"
    finally:
        result.sim_seconds = clock.t
        if station.voice is not None:
            try:
                result.spoken = station.voice.export(out_dir / "voice")
            except OSError as exc:
                result.spoken = []
                station.voice.reason = f"cannot write {out_dir / 'voice'}: {exc.strerror or exc}"
            result.voice = station.voice.status()
        result.wall_seconds = time.monotonic() - wall0
        station.close()
        station.close_receipts()
    return result


def demo_command(
    cfg: Config,
    out: Path,
    profile: str | None = None,
    city: str | None = None,
    as_json: bool = False,
    max_sim_s: float = LIMIT_S,
    voice: bool = False,
    lang: str = "zh",
    large_text: bool = False,
    returning: Path | None = None,
) -> int:
    """`kiosk demo`: progress and a summary for a person, or one JSON object (also on failure)."""

    def say(line: str) -> None:
        if not as_json:
            print(line, flush=True)

    try:
        result = run_demo(
            cfg, out, profile=profile, city=city, max_sim_s=max_sim_s, progress=say, voice=voice,
            lang=lang, large_text=large_text, returning=returning,
        )
    except DemoFailed as exc:
        if not as_json:
            raise
        print(f"kiosk: {exc}", file=sys.stderr)
        sys.stdout.write(json.dumps(exc.result.to_json(), ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return exc.exit_code
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
        sys.stdout.flush()
    elif result.returning:
        review = result.review or {}
        shown = review.get("text") or review.get("message") or {}
        say(f"scanned: {result.scanned_number or '-'}: {shown.get('zh')} / {shown.get('en')}")
        if review.get("reason_text"):
            say(f"reason: {review['reason_text']['zh']} / {review['reason_text']['en']}")
        if result.retake is not None:
            r = result.retake
            verdict = "compliant" if r["compliant"] else "NOT compliant"
            failed = f" FAILED: {(r['message'] or {}).get('en')}" if r["failed"] else ""
            say(f"retake of {r['number']}: photo {r['photo']} ({verdict}), slip {r['slip']}{failed}")
    else:
        verdict = "compliant" if result.compliant else "NOT compliant"
        say(
            f"photo: {result.photo} ({verdict}); {len(result.prompts)} prompts, "
            f"{result.sim_seconds:.1f} s simulated in {result.wall_seconds:.1f} s"
        )
        printed = (result.handover or {}).get("printed")
        say(f"image number: {result.number} ({result.city}){'' if printed else ', slip NOT printed'}")
        say(f"slip: {result.slip} (ESC/POS bytes: {result.escpos})")
        if result.spoken is not None:
            why = (result.voice or {}).get("reason")
            say(f"voice: {len(result.spoken)} utterances in {out / 'voice'}" + (f" ({why})" if why else ""))
    if result.returning:  # the review was shown (and a retake, if any, went through)
        ok = result.outcome == "scanned" or (result.outcome == "done" and result.compliant)
        return 0 if ok else 1
    return 0 if result.compliant else 1
