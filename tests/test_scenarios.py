"""The guided scenarios (drift_core.scenarios): valid, explained in two sentences, and what they claim
happens in a short run."""

from __future__ import annotations

import re

from drift_core.config import ExperimentConfig
from drift_core.scenarios import SCENARIOS
from drift_core.train import Trainer


def test_scenarios_are_valid_and_explained():
    assert {
        "start_between",
        "start_far",
        "start_collapsed",
        "attraction_only",
        "tau_too_small",
        "tau_too_large",
        "tiny_batch",
    } <= set(SCENARIOS)
    inits = {SCENARIOS[k].config.model.init for k in ("start_between", "start_far", "start_collapsed")}
    assert inits == {"between", "far", "collapsed"}
    assert SCENARIOS["attraction_only"].config.drift.attraction_only
    small, large = SCENARIOS["tau_too_small"].config.drift.tau, SCENARIOS["tau_too_large"].config.drift.tau
    assert small < ExperimentConfig().drift.tau < large
    assert SCENARIOS["tiny_batch"].config.train.batch_size <= 16
    for s in SCENARIOS.values():
        s.config.validate()
        assert len(re.findall(r"[.!?](?:\s|$)", s.watch)) == 2, s.key
        assert ExperimentConfig.from_json(s.config.to_json()) == s.config


def test_scenario_claims_hold_in_a_short_run():
    """Attraction only stays a tight clump where the full field spreads out; the far start (normalised
    distances) does travel to the data."""
    from drift_core.data.toy2d import mixture_modes
    from drift_core.metrics import mode_coverage

    small = {"width": 32, "batch_size": 256}
    spread = {}
    for attraction_only in (True, False):
        trainer = Trainer(
            SCENARIOS["attraction_only"].config.with_values({**small, "attraction_only": attraction_only})
        )
        trainer.run(100)
        x = trainer.sample(512)
        spread[attraction_only] = float(x.std(0).norm())
        covered = mode_coverage(x, mixture_modes("8gaussians"), 0.05).covered
        if attraction_only:
            assert covered <= 1
    assert spread[True] < 0.5 * spread[False]
    moved = {}
    for normalize in (True, False):
        far = Trainer(SCENARIOS["start_far"].config.with_values({**small, "normalize_distance": normalize}))
        before = far.sample(256).mean(0)
        far.run(40)
        moved[normalize] = float((far.sample(256).mean(0) - before).norm())
    assert moved[True] > 0.3 and moved[False] < 1e-3  # raw kernel weight ~e^-40: frozen, as the text says
