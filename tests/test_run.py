"""drift_core.run: one Run for the app, the CLI and the sweep; its evaluator, its lock and the named
random streams it draws from."""

from __future__ import annotations

import csv
import itertools
import math
import threading

import pytest
import torch

from drift_core.cli import main
from drift_core.config import ExperimentConfig
from drift_core.particles import ParticleTrainer
from drift_core.run import DOUBLED_LR_ARM, DOUBLED_STEP_ARM, Run, compare_arms, network_and_particle_arms, reset_changes
from drift_core.runtime import PURPOSES, stream, stream_seed
from drift_core.train import Trainer

SMALL = ExperimentConfig().with_values(
    {"batch_size": 32, "width": 16, "depth": 1, "method": "lookahead", "K": 2, "dataset": "8gaussians"}
)


def test_compare_arms_and_reset_changes():
    arms = compare_arms(SMALL.with_values({"K": 0, "lr": 0.004}), fairness=True)
    assert arms["baseline"].drift.K == 0 and arms["lookahead"].drift.K == 1
    assert arms[DOUBLED_LR_ARM].train.lr == pytest.approx(0.008)
    assert reset_changes(SMALL, SMALL.with_values({"K": 5, "lr": 0.01})) == []
    assert reset_changes(SMALL, SMALL.with_values({"seed": 2, "width": 8})) == ["width", "seed"]


def test_playground_run_budget_and_history():
    run = Run.single(SMALL.with_values({"steps": 3}))
    out = run.advance(5)
    assert len(out.records) == 3 and "budget" in out.paused_reason and not run.playing
    assert [r.step for r in run.history.records] == [1, 2, 3]
    assert run.frame(evaluate=True).step == 3 and run.history.metrics[-1].step == 3


def test_runs_pause_on_divergence_and_stay_paused():
    import math

    run = Run.compare(SMALL.with_values({"method": "baseline"}), fairness=True)
    run.playing = True
    with torch.no_grad():
        run.trainers["lookahead"].model.head.weight.fill_(math.nan)
    out = run.advance(3)
    assert "lookahead" in out.paused_reason and not run.playing
    # every arm went back to the newest kept state (step 0), the shared batch stream too
    assert run.step == 0 and all(t.step_count == 0 for t in run.trainers.values())
    assert all(r.step == 0 for h in run.histories.values() for r in h.records)
    run.playing = True  # pressing Play again on a diverged comparison pauses at once (no rerun loop)
    again = run.advance(3)
    assert again.paused_reason and not again.records and not run.playing
    single = Run.single(SMALL)
    with torch.no_grad():
        single.trainer.model.head.weight.fill_(math.nan)
    single.playing = True
    assert single.advance(2).paused_reason and not single.playing and single.trainer.diverged
    single.playing = True
    assert single.advance(2).paused_reason and not single.playing


def test_one_advance_at_a_time_whatever_the_callers():
    """Two threads advancing one run (two overlapping script runs of a session) never step it at once:
    every step lands once, in order, and a frame that finds the run busy skips instead of waiting."""
    run = Run.single(SMALL.with_values({"steps": 10_000}))
    errors: list[BaseException] = []

    def train():
        try:
            for _ in range(10):
                run.advance(3)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=train) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert run.step == 60 and [r.step for r in run.history.records] == list(range(1, 61))
    with run.lock:  # held by "another script run"
        out = [None]
        other = threading.Thread(target=lambda: out.__setitem__(0, run.advance(5, wait=False)))
        other.start()
        other.join()
    assert out[0].busy and not out[0].records and run.step == 60


def test_cli_train_and_the_app_run_report_the_same_metrics(tmp_path):
    """The same config and seed give identical metrics in `drift-lab train` and in the app's Run."""
    cfg = SMALL.with_values({"steps": 20, "seed": 3})
    (tmp_path / "cfg.json").write_text(cfg.to_json())
    assert (
        main(
            [
                "train",
                "--config",
                str(tmp_path / "cfg.json"),
                "--eval-every",
                "10",
                "--quiet",
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )
    with open(tmp_path / "run" / "metrics.csv", newline="") as fh:
        rows = {int(r["step"]): r for r in csv.DictReader(fh)}
    run = Run.single(cfg)
    run.advance(20)
    app = run.evaluate()["run"]
    for name in ("energy", "sliced_w2", "modes_covered"):
        assert float(rows[20][name]) == app[name], name
    assert float(rows[20]["mmd2"]) == run.evaluator(run.trainer, mmd=True)["mmd2"]  # the CLI's extra column
    assert run.history.metrics[-1].values == app


def test_streams_of_different_seeds_and_purposes_never_coincide():
    seeds = list(range(40)) + [2**31 - 1, 10**30]
    parts = (0, 1, 2, 7, 1000)  # sub-streams: a process rank, a sample drawn at some step
    values = {(s, p, k): stream_seed(s, p, k) for s, p, k in itertools.product(seeds, PURPOSES, parts)}
    assert len(set(values.values())) == len(values)  # no two (seed, purpose, part) share a torch seed
    assert all(stream_seed(s, p) == values[s, p, 0] for s, p in itertools.product(seeds, PURPOSES))
    assert all(0 <= v < 2**63 for v in values.values())
    # the old seed + k scheme made seed 0's evaluation stream seed 2's data stream
    a = torch.rand(8, generator=stream(0, "evaluation"))
    b = torch.rand(8, generator=stream(2, "data"))
    assert not torch.equal(a, b)
    assert torch.equal(torch.rand(8, generator=stream(5, "data")), torch.rand(8, generator=stream(5, "data")))
    with pytest.raises(ValueError, match="unknown random stream"):
        stream(0, "dat")


def test_compare_run_shares_weights_batches_and_evaluator():
    run = Run.compare(SMALL.with_values({"steps": 50}), fairness=True)
    first = [p.detach().clone() for p in run.trainers["baseline"].model.parameters()]
    for trainer in run.trainers.values():
        assert all(torch.equal(a, b) for a, b in zip(first, trainer.model.parameters()))
    run.advance(4)
    assert run.step == 4 and all(len(h.records) == 4 for h in run.histories.values())
    metrics = run.evaluate()
    assert set(metrics) == {"baseline", "lookahead", DOUBLED_LR_ARM}
    assert all(math.isfinite(m["energy"]) for m in metrics.values())
    # the baseline arm of a comparison is the Playground's baseline run (same streams)
    single = Run.single(SMALL.with_values({"steps": 50, "method": "baseline"}))
    single.advance(4)
    assert single.evaluate()["run"]["energy"] == pytest.approx(metrics["baseline"]["energy"], rel=1e-5)


@pytest.mark.parametrize("compare", [False, True])
def test_a_fork_without_changes_continues_exactly_like_the_original(compare):
    """Playground branches and Compare forks are one call; forking a kept step with no changes and
    training on gives the original's weights bit for bit (weights, Adam state and batch stream kept)."""
    cfg = SMALL.with_values({"steps": 100})
    run = Run.compare(cfg) if compare else Run.single(cfg)
    for _ in range(3):
        run.advance(10)
        run.frames()  # keeps a snapshot (and the state) every 10 steps
    assert run.can_fork(20) and not run.can_fork(15)
    fork = run.fork(20)
    assert fork.step == 20 and [r.step for r in fork.history.records][-1] == 20
    fork.advance(10)
    for name, trainer in run.trainers.items():
        for a, b in zip(trainer.model.parameters(), fork.trainers[name].model.parameters()):
            assert torch.equal(a, b), name
    changed = run.fork(20, tau=0.2, K=3)
    assert changed.base_config.drift.tau == 0.2 and changed.trainer.config.drift.tau == 0.2
    with pytest.raises(KeyError):
        run.fork(15)


def test_a_copy_now_continues_like_the_original_and_leaves_it_alone():
    run = Run.single(SMALL.with_values({"steps": 100}))
    run.advance(7)  # between two kept states: the copy is of the network now, not of a tape entry
    copied = run.copy_now()
    assert copied.step == 7 and copied.trainer is not run.trainer
    copied.advance(5)
    run.advance(5)
    for a, b in zip(run.trainer.model.parameters(), copied.trainer.model.parameters()):
        assert torch.equal(a, b)  # weights, Adam state and the data stream were all copied
    smaller = run.copy_now(batch_size=16)
    smaller.advance(1)
    assert smaller.config.train.batch_size == 16 and run.config.train.batch_size == 32 and run.step == 12


def test_branches_are_kept_with_their_run_and_bounded():
    run = Run.single(SMALL.with_values({"steps": 100}))
    run.advance(10)
    run.frames()
    for tau in (0.1, 0.2, 0.3, 0.5, 0.7):
        run.branch(10, tau=tau)
    assert len(run.branches) == 4 and run.branches[-1][1].config.drift.tau == 0.7
    assert run.branches[0][0].startswith("fork @10")


def test_step_back_returns_to_a_kept_state_and_trims_the_history():
    run = Run.single(SMALL.with_values({"steps": 100}))
    run.advance(30)
    back = run.step_back()
    assert back < 30 and run.step == back and run.history.records[-1].step == back and not run.playing


def test_apply_gives_each_arm_only_the_fields_its_config_changes():
    """A live change reaches every arm through its arm config (K to the lookahead arm, 2x lr to the
    control) and leaves what an arm changed on its own (a batch halved after running out of memory)."""
    run = Run.compare(SMALL, fairness=True)
    halved = run.trainers["lookahead"].config.with_values({"batch_size": 16})
    run.trainers["lookahead"].update(halved)  # what the out-of-memory fallback does
    changed = run.apply(SMALL.with_values({"tau": 0.2, "K": 3, "lr": 0.004}))
    assert changed == ["K", "lr", "tau"]
    cfgs = {name: t.config for name, t in run.trainers.items()}
    assert all(c.drift.tau == 0.2 for c in cfgs.values())
    assert [cfgs[n].drift.K for n in ("baseline", "lookahead", DOUBLED_LR_ARM)] == [0, 3, 0]
    assert cfgs[DOUBLED_LR_ARM].train.lr == pytest.approx(0.008) and cfgs["baseline"].train.lr == pytest.approx(0.004)
    assert cfgs["lookahead"].train.batch_size == 16 and cfgs["baseline"].train.batch_size == 32
    assert run.base_config.drift.K == 3


def test_a_run_whose_outputs_run_away_pauses_once_with_the_reason():
    config = ExperimentConfig().with_values({"batch_size": 64, "width": 16, "depth": 1, "lr": 1.0, "dataset": "moons"})
    run = Run.single(config)
    run.advance(1)
    run.playing = True
    with torch.no_grad():  # what lr = 1 does within a few steps: finite, but far from the data
        run.trainer.model.head.bias.add_(1e4)
    run.evaluate()
    assert not run.playing and "ran away from the data" in run.message and "learning rate" in run.message
    run.playing, run.message = True, ""  # Play: told once, it trains on
    run.advance(1)
    run.evaluate()
    assert run.playing


# ---- particle arms ------------------------------------------------------------------------------------

PARTICLES = SMALL.with_values({"mode": "particles", "method": "baseline", "steps": 100})


def test_a_particle_comparison_doubles_the_particle_step_for_its_fairness_control():
    arms = compare_arms(PARTICLES.with_values({"particle_step": 0.5}), fairness=True)
    assert set(arms) == {"baseline", "lookahead", DOUBLED_STEP_ARM}
    assert arms[DOUBLED_STEP_ARM].train.particle_step == 1.0 and arms[DOUBLED_STEP_ARM].drift.K == 0
    assert arms["lookahead"].train.particle_step == 0.5 and arms["lookahead"].drift.K == 1
    assert all(cfg.train.mode == "particles" for cfg in arms.values())
    run = Run.compare(PARTICLES, fairness=True)
    assert all(isinstance(t, ParticleTrainer) for t in run.trainers.values())
    run.advance(3)
    assert run.step == 3 and all(math.isfinite(m["energy"]) for m in run.evaluate().values())


def test_network_and_particles_in_lock_step_share_start_batches_and_live_changes():
    run = Run.network_and_particles(PARTICLES.with_values({"mode": "network"}))
    network, particles = run.trainers["network"], run.trainers["particles"]
    assert isinstance(network, Trainer) and isinstance(particles, ParticleTrainer)
    assert run.label("particles") == "baseline (particles)" and run.label("network") == "baseline"
    first = run.history.metrics[0].values
    assert run.histories["particles"].metrics[0].values == first  # the same start sample
    seen = []
    for name, trainer in run.trainers.items():  # record the positives each arm trains on
        original = trainer.step
        trainer.step = lambda batch, original=original, name=name: (
            seen.append((name, batch.positives)) or original(batch)
        )
    run.advance(2)
    assert torch.equal(seen[0][1], seen[1][1]) and torch.equal(seen[2][1], seen[3][1])
    changed = run.apply(run.base_config.with_values({"particle_step": 0.25, "tau": 0.1}))
    assert changed == ["particle_step", "tau"]
    assert particles.config.train.particle_step == 0.25 and network.config.drift.tau == 0.1
    assert run.needs_reset(run.base_config.with_values({"mode": "particles"})) == ["mode"]
    assert network_and_particle_arms(PARTICLES)["network"].train.mode == "network"


def test_particle_runs_fork_step_back_and_keep_their_budget():
    run = Run.network_and_particles(PARTICLES.with_values({"steps": 25}))
    for _ in range(2):
        run.advance(10)
        run.frames()
    fork = run.fork(10)
    fork.advance(10)
    torch.testing.assert_close(
        fork.trainers["particles"].particles, run.trainers["particles"].particles, rtol=0, atol=0
    )
    out = run.advance(10)
    assert run.step == 25 and "budget" in out.paused_reason
    back = run.step_back()
    assert back == 20 and run.trainers["particles"].step_count == 20
    changed = run.fork(20, particle_step=2.0)
    assert changed.trainers["particles"].config.train.particle_step == 2.0


def test_a_diverging_particle_arm_pauses_the_run_and_goes_back():
    run = Run.single(PARTICLES)
    run.advance(10)
    run.frames()
    run.trainer.particles[0, 0] = float("nan")
    run.playing = True
    out = run.advance(3)
    assert "diverged" in out.paused_reason and not run.playing
    assert run.step == 10 and torch.isfinite(run.trainer.particles).all()
