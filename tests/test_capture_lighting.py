"""The lighting loop closes on the simulated camera: the LEDs even out an unevenly lit face in
under a second (30 frames at 30 fps), whichever side the ambient light comes from."""

from __future__ import annotations

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from kiosk.capture.lighting import LightingLoop, LightMeasure, measure_light
from kiosk.capture.rules import load_rules
from kiosk.config import HardwareConfig
from kiosk.hw.lights import Lights
from kiosk.sim.scene import Scene, SimCamera, SimSubject


@pytest.fixture(scope="module")
def rig(analyzer, sample_rgb):
    factory = MockFactory(pin_class=MockPWMPin)
    lights = Lights.from_config(HardwareConfig(), factory)
    cam = SimCamera.from_image(
        sample_rgb, analyzer=analyzer, levels=lambda: lights.levels, subject=SimSubject(scene=Scene())
    )
    yield cam, lights
    lights.close()
    factory.reset()


@pytest.mark.parametrize(
    "tilt, ambient", [(0.5, 0.35), (-1.0, 0.5), (0.0, 0.35)]
)  # the sample is lit from the left
def test_loop_converges_within_one_second_of_frames(rig, analyzer, tilt, ambient):
    cam, lights = rig
    cam.subject.scene = Scene(tilt=tilt, ambient=ambient, mouth=0.0)
    lights.off()
    analyzer.reset()
    f = cam.frame()
    first = measure_light(f.rgb, analyzer.track(f.rgb).faces[0])  # the ambient light alone
    loop = LightingLoop(load_rules().lighting)
    lights.set(loop.reset())
    converged_at = None
    for i in range(30):
        f = cam.frame()
        faces = analyzer.track(f.rgb).faces
        m = measure_light(f.rgb, faces[0])
        lights.set(loop.update(m))
        if loop.converged and converged_at is None:
            converged_at = i
    assert converged_at is not None and converged_at < 30
    m = loop.last
    assert abs(m.balance) <= 0.04 and abs(m.mean - 140) <= 140 * 0.06
    if tilt:
        assert abs(first.balance) > 0.15  # it really is uneven
        assert (lights.levels["right"] > lights.levels["left"]) == (tilt > 0)  # the dark side got more light


def test_loop_holds_the_levels_without_a_face():
    loop = LightingLoop(load_rules().lighting)
    loop.update(LightMeasure(left=150, right=100, mean=125))
    before = loop.levels()
    assert before["right"] > before["left"]
    assert loop.update(None) == before
    assert not loop.converged
    idle = loop.idle()
    assert set(idle.values()) == {load_rules().lighting["idle"]}
