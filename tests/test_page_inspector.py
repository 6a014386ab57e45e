"""AppTest of the Inspector (pages/inspector.py with ui.inspector_view): the stages, Next step, Play
walking the stages, the kernel lens, live and reset changes."""

from __future__ import annotations

import pytest

from drift_views.inspector import STAGES
from tests.app_support import lab_of, open_page, step_counter, texts, tick


@pytest.mark.slow
def test_inspector_walks_stages_steps_and_lens():
    at = open_page("inspector", {"width": "32", "depth": "2"})
    assert step_counter(at) == 1
    for index in range(len(STAGES)):
        at.select_slider(key="stage").set_value(index).run()
        assert not at.exception, STAGES[index].title
        assert STAGES[index].title in texts(at.markdown)
    at.number_input(key="lens_particle").set_value(5).run()
    assert "Particle **5**" in texts(at.markdown)
    at.button(key="step").click().run()
    assert step_counter(at) == 2 and at.select_slider(key="stage").value == 0
    # Play walks the stages; after the last one a new step starts
    at.button(key="play").click().run()
    tick(at, len(STAGES))
    assert step_counter(at) == 3
    # a live K change keeps the trainer; a seed change resets it
    run = lab_of(at).runs["inspector"]
    at.button(key="play").click().run()
    at.slider(key="K").set_value(2).run()
    assert lab_of(at).runs["inspector"] is run
    at.button(key="step").click().run()
    assert len(lab_of(at).pages["inspector"].inspection.terms) == 3
    at.number_input(key="seed").set_value(3).run()
    assert lab_of(at).runs["inspector"] is not run and step_counter(at) == 1


def test_the_inspector_continues_from_a_copy_of_the_playground_run():
    at = open_page("playground", {"width": "32", "depth": "2", "batch_size": "64", "steps_per_frame": "10"})
    at.button(key="play").click().run()
    tick(at, 2)
    at.button(key="play").click().run()  # pause
    playground = lab_of(at).runs["playground"]
    trained = playground.step
    at.switch_page("pages/inspector.py").run()
    at.button(key="inspect_playground").click().run()
    assert not at.exception, at.exception
    inspector = lab_of(at).runs["inspector"]
    assert inspector.step == trained + 1 and step_counter(at) == trained + 1  # its first inspected step
    assert inspector.trainer is not playground.trainer and playground.step == trained  # a copy: untouched
    assert inspector.trainer.config.train.batch_size == 48  # the Inspector's own batch


def test_the_inspector_inspects_a_network_step_when_the_sidebar_says_particles():
    at = open_page("inspector", {"width": "32", "depth": "2", "mode": "particles", "dimension": "8"})
    assert not at.exception, at.exception
    assert "Inspector takes one step of the network on 2D data" in texts(at.info)
    run = lab_of(at).runs["inspector"]
    assert run.config.train.mode == "network" and run.config.data.dimension == 2 and step_counter(at) == 1
