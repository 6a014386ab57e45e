"""Everything one browser session of the app keeps between script runs, without Streamlit: one
:class:`LabSession` with the experiment configuration (the only copy of the settings), the display
settings, the uploaded points, each page's :class:`~drift_core.run.Run`, the notices waiting to be
shown and any page's own state; and what the app's controls do to it (a setting, a scenario, an
upload, a checkpoint, Play, Step, Reset, Step back, the timeline, a fork). :mod:`ui.session` keeps it
under one session-state key and binds the widgets to it; the controls' callbacks call these methods."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from torch import Tensor

from drift_core.checkpoint import CheckpointError
from drift_core.config import ConfigError, ExperimentConfig
from drift_core.data.points import PointSetError, load_points
from drift_core.images.config import ImageExperimentConfig
from drift_core.images.pair import image_pair
from drift_core.limits import Limits, config_from_query
from drift_core.particles import ParticleTrainer, load_arm
from drift_core.run import Run
from drift_core.scenarios import SCENARIOS

from .display import TRUTHY, ViewSettings
from .inspector import InspectorState
from .predict import Prediction

__all__ = ["LabSession", "UserPoints"]

T = TypeVar("T")


@dataclass(frozen=True)
class UserPoints:
    """An uploaded (or checkpointed) point set [M, 2], its description, and a version that grows
    with every new upload, so a run knows when its data changed."""

    points: Tensor
    description: str
    version: int


@dataclass
class LabSession:
    """One browser session's state. ``runs`` and ``replay`` are keyed by page name
    ("playground", "compare", "inspector", "images"); ``notices`` by topic ("link", "setting",
    "upload", "checkpoint", or a page name for what happened to its run); ``pages`` holds any
    page's own state object (see :meth:`page`)."""

    config: ExperimentConfig = field(default_factory=ExperimentConfig)
    view: ViewSettings = field(default_factory=ViewSettings)
    points: UserPoints | None = None
    runs: dict[str, Any] = field(default_factory=dict)
    run_points: dict[str, int] = field(default_factory=dict)  # the points version each page's run trains on
    fallbacks_seen: dict[str, int] = field(default_factory=dict)  # out-of-memory fallbacks taken into the config
    replay: dict[str, int | None] = field(default_factory=dict)
    notices: dict[str, str] = field(default_factory=dict)
    scenario: str | None = None  # the guided scenario whose "what to watch" is shown
    pages: dict[str, Any] = field(default_factory=dict)
    token: str = field(default_factory=lambda: uuid.uuid4().hex)  # this session in the server's registry
    from_link: bool = False  # the settings were read from the URL (first run of the session)
    fork_choices: dict[str, dict] = field(default_factory=dict)  # per page: the fork controls' changed values
    play_next: set[str] = field(default_factory=set)  # pages whose next run starts playing (Play right after Reset)

    EVICTED_NOTICE = (
        "This session was idle while the server was full, so its run was released to make room for "
        "another user (DRIFT_MAX_SESSIONS). Your settings are kept; a fresh run has started."
    )

    def release(self) -> None:
        """Free this session's runs and page state, because the server evicted it while idle (its
        settings and uploaded points stay); the next page it shows says why, and starts a fresh run."""
        self.runs.clear()
        self.pages.clear()
        self.notices["session"] = self.EVICTED_NOTICE

    def set_view(self, **changes) -> None:
        self.view = replace(self.view, **changes)

    def page(self, name: str, factory: Callable[[], T]) -> T:
        """Page ``name``'s own state object, created by ``factory`` on first use."""
        if name not in self.pages:
            self.pages[name] = factory()
        return self.pages[name]

    def take_notice(self, topic: str) -> str:
        """The notice waiting under ``topic`` ("" if none), removed."""
        return self.notices.pop(topic, "")

    def adopt_fallbacks(self) -> None:
        """After a run fell back to a smaller batch (out of memory), make that batch the session's, so
        the next script run does not ask for the batch that did not fit."""
        for page, run in self.runs.items():
            trainers = list(getattr(run, "trainers", {}).values())
            taken = sum(len(getattr(t, "fallback_notices", ())) for t in trainers)
            if taken > self.fallbacks_seen.get(page, 0):
                self.fallbacks_seen[page] = taken
                smallest = min(t.config.train.batch_size for t in trainers)
                if page != "inspector" and smallest < self.config.train.batch_size:
                    self.config = self.config.with_values({"batch_size": smallest})

    def add_points(self, points: Tensor, description: str) -> None:
        version = self.points.version + 1 if self.points is not None else 1
        self.points = UserPoints(points, description, version)

    def open_link(self, params: Mapping[str, str], limits: Limits) -> None:
        """A page's URL parameters: on the session's first run its settings become the session's
        (unknown keys ignored, bad values kept, out-of-range ones clamped, each with a notice under
        "link"); later, only ``presenter`` is honoured (a link opened in an existing tab)."""
        if self.from_link:
            if "presenter" in params:
                self.set_view(presenter=str(params["presenter"]).strip().lower() in TRUTHY)
            return
        self.from_link = True
        config, notices = config_from_query(ExperimentConfig(), params, limits)
        if config.data.dataset == "custom":
            notices.append("the link uses uploaded points, which are not part of a link: upload the CSV again")
        self.config = config
        self.view, view_notices = ViewSettings.from_query(params, limits.max_steps_per_frame)
        if notices + view_notices:
            self.notices["link"] = "Link settings adjusted: " + "; ".join(notices + view_notices)

    # ---- settings ------------------------------------------------------------------------------------
    def set_setting(self, name: str, value, limits: Limits) -> None:
        """Config field ``name`` set to ``value``; a value the engine or the server's ``limits`` refuse
        keeps the previous config and leaves the reason under the notice "setting"."""
        try:
            config = self.config.with_values({name: value})
            limits.check(config)
        except ConfigError as err:
            self.notices["setting"] = f"Setting not applied: {err}"
            return
        self.config = config
        self.notices.pop("setting", None)

    def apply_scenario(self, key: str) -> None:
        """The guided scenario's configuration becomes the session's; the 2D pages start fresh runs."""
        self.config = SCENARIOS[key].config
        self.scenario = key
        for page in ("playground", "compare", "inspector"):
            self.runs.pop(page, None)

    def take_points(self, data: bytes, name: str, limits: Limits) -> None:
        """An uploaded CSV of points: on success they become the data (dataset "custom"); on failure
        everything stays as it was and the notice "upload" says why."""
        notes: list[str] = []
        try:
            points = load_points(data, max_points=limits.max_upload_points, notes=notes)
        except PointSetError as err:
            self.notices["upload"] = f"Could not use {name}: {err}. Your previous data is unchanged."
            return
        self.add_points(points, name + (f" ({'; '.join(notes)})" if notes else ""))
        self.notices.pop("upload", None)
        self.config = self.config.with_values({"dataset": "custom"})

    def take_checkpoint(self, page: str, data: bytes, name: str, limits: Limits) -> None:
        """A checkpoint file read safely (:func:`drift_core.particles.load_arm`, ``weights_only``): on
        success its run replaces ``page``'s and its settings become the session's; on failure nothing
        changes and the notice "checkpoint" says why (prefixed "error:")."""
        try:
            trainer = load_arm(data, limits=limits)  # a network or a particle run
        except (CheckpointError, ConfigError, ValueError) as err:  # ValueError: e.g. a device this server lacks
            self.notices["checkpoint"] = f"error:Could not load {name}: {err}. Your current run is unchanged."
            return
        if trainer.points is not None:
            self.add_points(trainer.points, name)
        self.run_points[page] = self.points.version if trainer.points is not None else 0
        self.config = trainer.config
        self.set_view(beside_particles=False)  # the loaded run is one arm: keep it as it is
        self.runs[page], self.replay[page] = Run.around(trainer), None
        self.notices["checkpoint"] = (
            f"Loaded {name}: {trainer.config.data.dataset}, {trainer.config.drift.label()}, "
            f"step {trainer.step_count}. Press Play to continue it."
        )

    # ---- a page's run ----------------------------------------------------------------------------------
    def run_for(self, page: str, config: ExperimentConfig, *, fairness: bool = False) -> Run:
        """Page ``page``'s run for ``config``: created on first use, rebuilt when a field that defines
        the run changed (data, start, network, seed, mode, uploaded points, the fairness arm, the
        particles beside the network), else given the live changes. What happened is left in
        ``notices[page]``."""
        custom = config.data.dataset == "custom" and self.points is not None
        points = self.points.points if custom else None
        version = self.points.version if custom else 0
        beside = page == "playground" and self.view.beside_particles and config.train.mode == "network"
        run = self.runs.get(page)
        if run is not None:
            changed = run.needs_reset(config, fairness if page == "compare" else None)
            if self.run_points.get(page, 0) != version:
                changed.append("uploaded points")
            if page == "playground" and beside != ("particles" in run.trainers):
                changed.append("the particles beside the network")
            if not changed:
                live = run.apply(config)
                if live:
                    self.notices[page] = f":material/bolt: Applied live (no reset): {', '.join(live)}."
                return run
            self.notices[page] = f":material/restart_alt: Restarted the run: {', '.join(changed)} changed."
        if page == "compare":
            run = Run.compare(config, fairness, points)
        elif beside:
            run = Run.network_and_particles(config, points)
        else:
            run = Run.single(config, points)
        self.runs[page], self.run_points[page], self.replay[page] = run, version, None
        self.fork_choices.pop(page, None)
        run.playing = self._take_play_next(page)
        return run

    def _take_play_next(self, page: str) -> bool:
        """Whether Play was pressed for ``page`` while it had no run (forgotten once asked)."""
        asked = page in self.play_next
        self.play_next.discard(page)
        return asked

    def images_run(self, config: ImageExperimentConfig, *, reset: bool = False) -> tuple[Run, str]:
        """The images page's lock-step pair for ``config`` (:func:`drift_core.images.pair.image_pair`)
        and a note: a new pair (both arms from step 0) on Reset, on the first visit or when a setting
        that needs one changed; otherwise the same pair with the live settings (the step budget)
        applied. Raises what :func:`image_pair` raises (the old pair stays)."""
        run = self.runs.get("images")
        if run is not None and not reset and not run.needs_reset(config):
            if config != run.base_config:
                run.apply(config)
            return run, ""
        note = "" if run is None else ("restarted" if reset else "settings changed: both runs restarted from step 0")
        self.runs["images"] = image_pair(config)
        self.runs["images"].playing = self._take_play_next("images")
        return self.runs["images"], note

    def play_pause(self, page: str) -> None:
        """Play or pause ``page``'s run; Play returns to the live view and resumes after a divergence.
        Streamlit runs the callbacks of clicks that come faster than a rerun together, in click order:
        after Reset there is no run yet, so Play then starts the page's next one."""
        run = self.runs.get(page)
        if run is None:  # Reset and Play pressed within one rerun: the page's fresh run starts playing
            self.play_next.add(page)
            return
        if run.playing:
            run.playing = False
            return
        self.replay[page] = None
        if getattr(run, "diverged", False):
            run.resume_after_divergence()
        run.message, run.playing = "", True

    def step(self, page: str) -> None:
        """One training step of ``page``'s run (paused, live view)."""
        run = self.runs.get(page)
        if run is None:
            return
        self.replay[page], run.playing = None, False
        if getattr(run, "diverged", False):
            run.resume_after_divergence()
        run.advance(1)

    def advance_branches(self, page: str, steps: int | None = None) -> None:
        """Train every branch of ``page``'s run ``steps`` steps (by default the steps per frame, at
        least one: while the run plays, each frame trains its branches too)."""
        run = self.runs.get(page)
        for _name, branch in run.branches if run is not None else ():
            branch.advance(steps if steps is not None else max(1, self.view.steps_per_frame))

    def predict(self, page: str, move: str, *args) -> None:
        """A move in ``page``'s prediction game (:class:`~drift_views.predict.Prediction`): "toggle",
        "next_round" or "reveal" on the page's run, or "set_horizon" with ``args``."""
        game, run = self.page(f"{page}:predict", Prediction), self.runs.get(page)
        if move == "set_horizon":
            game.set_horizon(*args)
        elif move == "toggle" or run is not None:
            getattr(game, move)(run)

    def inspect_next_step(self, page: str) -> None:
        """The Inspector's "Next step": pause ``page``'s run and inspect its next training step
        (:meth:`~drift_views.inspector.InspectorState.next_step`)."""
        run = self.runs.get(page)
        if run is not None:
            run.playing = False
            self.page(page, InspectorState).next_step(run)

    def remove_branches(self, page: str) -> None:
        run = self.runs.get(page)
        if run is not None:
            run.branches.clear()

    def open_in_playground(self, config: ExperimentConfig) -> None:
        """Make a Sweep cell's ``config`` the session's settings; the Playground then starts a new run
        with them from step 0 (the sweep keeps numbers and final points, not trained networks)."""
        self.config = config
        self.runs.pop("playground", None)
        self.notices["playground"] = (
            f"Opened from the Sweep page: a new run from step 0 with the settings of the cell you picked (seed "
            f"{config.train.seed}); the sweep keeps numbers and final points, not trained networks."
        )

    def inspectable_playground(self, config: ExperimentConfig) -> Run | None:
        """The Playground's run when the Inspector (whose run has ``config``) can continue from a copy
        of it: one network arm, past step 0, with nothing that would restart the Inspector's run."""
        source = self.runs.get("playground")
        if source is None or len(source.trainers) != 1 or isinstance(source.trainer, ParticleTrainer):
            return None
        return source if source.step > 0 and not source.needs_reset(config) else None

    def inspect_playground(self, config: ExperimentConfig) -> None:
        """The Inspector continues from a copy of the Playground's run as it is now (its weights,
        optimizer and data stream) with the Inspector's batch size and budget (from ``config``); the
        Playground's own run is untouched."""
        source = self.inspectable_playground(config)
        if source is None:
            return
        copied = source.copy_now(batch_size=config.train.batch_size, steps=config.train.steps)
        self.runs["inspector"], self.replay["inspector"] = copied, None
        self.run_points["inspector"] = self.run_points.get("playground", 0)
        self.notices["inspector"] = (
            f":material/content_copy: Inspecting a copy of the Playground's run at step "
            f"{copied.step}; the Playground's own run is untouched."
        )

    def reset(self, page: str) -> None:
        """Drop ``page``'s run: the page starts a fresh one from step 0."""
        self.runs.pop(page, None)
        self.replay[page] = None
        self.notices[page] = ":material/restart_alt: Restarted the run."

    def step_back(self, page: str) -> None:
        """``page``'s run back to its newest kept state before this one (after a divergence)."""
        run = self.runs.get(page)
        if run is None:
            return
        try:
            step = run.step_back()
        except ValueError as err:
            self.notices[page] = str(err)
            return
        self.replay[page] = None
        self.notices[page] = (
            f":material/undo: Stepped back to step {step}. Lower the learning rate before "
            "pressing Play, or it will diverge again."
        )

    def timeline(self, page: str) -> tuple[list[int], int | None]:
        """The steps the timeline of ``page``'s run offers (its kept snapshots; none while it plays or
        keeps fewer than two) and the replayed one (None: live; a step no longer kept falls back to live)."""
        run = self.runs.get(page)
        steps = [] if run is None or run.playing else [snap.step for snap in run.history.snapshots]
        if len(steps) < 2:
            steps = []
        if self.replay.get(page) not in steps:
            self.replay[page] = None
        return steps, self.replay[page]

    def choose_replay(self, page: str, value) -> None:
        """Show kept step ``value`` of ``page``'s run (pausing it), or the live run ("live")."""
        self.replay[page] = None if value == "live" else value
        run = self.runs.get(page)
        if run is not None and value != "live":
            run.playing = False

    def fork_settings(self, page: str) -> dict:
        """What a fork of ``page``'s run would change: K, tau and batch_size as the run has them, with
        the values chosen in the fork controls (:meth:`choose_fork`) in their place."""
        base = self.runs[page].base_config
        now = {"K": base.drift.K, "tau": base.drift.tau, "batch_size": base.train.batch_size}
        return now | self.fork_choices.get(page, {})

    def choose_fork(self, page: str, name: str, value) -> None:
        """Set ``name`` (K, tau or batch_size) for the next fork of ``page``'s run."""
        self.fork_choices.setdefault(page, {})[name] = value

    def fork(self, page: str, step: int, changes: dict | None = None) -> None:
        """Fork ``page``'s run at kept ``step`` with new settings ``changes`` (K, tau, batch_size; by
        default :meth:`fork_settings`): on Compare the comparison itself continues from there (and the
        session takes the settings); elsewhere a branch trains beside the run. A refusal is left in
        ``notices[page]``."""
        run = self.runs.get(page)
        if run is None:
            return
        if changes is None:
            changes = self.fork_settings(page)
        try:
            if page == "compare":
                forked = run.fork(step, **changes)
                cfg = forked.base_config
                self.runs[page], self.replay[page] = forked, None
                self.fork_choices.pop(page, None)  # the fork controls start from the new run's settings
                self.config = self.config.with_values({k: cfg.to_flat()[k] for k in changes})
                self.notices[page] = (
                    f":material/call_split: Forked from step {step}: K = {cfg.drift.K}, "
                    f"τ = {cfg.drift.tau:g}, N = {cfg.train.batch_size}."
                )
            else:
                run.branch(step, **changes)
        except (ConfigError, KeyError) as err:
            self.notices[page] = f"Cannot fork from step {step}: {err}"
