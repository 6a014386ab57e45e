"""The live view of a :class:`~drift_core.run.Run`, shared by the Playground (one arm) and Compare
(lock-step arms): transport buttons, metric cards, one particle view per arm, the timeline with
"fork from here", exports and curves.

All training, evaluation, rewinding and forking is the run's, and what a click does to the session is
:class:`~drift_views.session.LabSession`'s (``lab().run_for(page, config)``, ``play_pause``, ``fork``...);
this module decides what is drawn where. A page's run lives in ``lab().runs[page]``.
"""

from __future__ import annotations

import time
import weakref
from functools import partial

import streamlit as st

from drift_core.run import Run
from drift_views import figures
from drift_views.frames import (
    Frame,
    Transport,
    arm_figures,
    branch_figures,
    fork_refusal,
    noise_applies,
    noise_note,
    run_warning,
)
from drift_views.pacing import CURVES_S, FrameBudget, StepRate, train_chunk
from drift_views.predict import overlay as prediction_marks
from drift_views.setting_widgets import fork_widgets
from drift_views.words import difference_sentence, run_cards

from . import classroom, predict
from .controls import config_widget, limits, view_widget
from .live import MetricCards, StatusLine, frame_ticks, live_fragment
from .live_plot import LiveView
from .session import LabSession, bound, lab, on_session


def run_note(session: LabSession, page: str) -> None:
    """One line on what happened to the page's run (restarted, applied live, forked, stepped back).
    In its own container, so the elements below keep their places when it comes and goes."""
    with st.container():
        note = session.notices.get(page)
        if note:
            st.caption(note)


# ---- transport: Play / Pause, Step, Reset, Step back ------------------------------------------------------
def header(title: str, page: str, run, *, step_method: str = "step", step_label: str = "Step") -> None:
    """The page's title and its transport in one row: Play/Pause (Space), Step (→), Reset (Backspace),
    and Step back while the run is diverged. The buttons' callbacks change the run before the page is
    drawn, so what the page shows is their result; a button is enabled exactly when it can act."""
    cols = st.columns([1.5, 1.6, 1.6, 1.8, 2.5], vertical_alignment="center")
    cols[0].markdown(f"### {title}")
    transport = Transport.of(run)
    cols[1].button(
        "Pause" if run.playing else "Play",
        icon=":material/pause:" if run.playing else ":material/play_arrow:",
        key="play",
        on_click=on_session,
        args=("play_pause", page),
        type="secondary" if run.playing else "primary",
        width="stretch",
        shortcut="Space",
        disabled=transport.budget_spent,
        help=transport.play_help,
    )
    cols[2].button(
        step_label,
        icon=":material/skip_next:",
        key="step",
        on_click=on_session,
        args=(step_method, page),
        width="stretch",
        shortcut="Right",
        help="one training step (→)",
    )
    cols[3].button(
        "Reset",
        icon=":material/replay:",
        key="reset",
        on_click=on_session,
        args=("reset", page),
        width="stretch",
        shortcut="Backspace",
        help="start this run again from step 0 (Backspace)",
    )
    if transport.diverged:
        cols[4].button(
            transport.step_back_label,
            key="step_back",
            icon=":material/undo:",
            on_click=on_session,
            args=("step_back", page),
            disabled=transport.step_back_to is None,
            help=Transport.STEP_BACK_HELP,
        )
    elif lab().view.presenter:
        with cols[4]:
            classroom.exit_presenter_button()


# ---- the live view ---------------------------------------------------------------------------------------
class LiveRunView:
    """Lays out and draws a page's live run. ``page`` is "playground" or "compare"; each frame trains
    a bounded chunk (while playing, in a timer run), then redraws the cards, views and status in place."""

    def __init__(self, session: LabSession, page: str, run: Run):
        self.session, self.page = session, page
        # weakly: Streamlit keeps the fragment (and so this view) with the browser session, and a run the
        # session released (an evicted idle session, a closed tab) must be freed, not kept by its view
        self._run = weakref.ref(run)
        self.compare = page == "compare"

    @property
    def run(self) -> Run:
        run = self._run()
        if run is None:
            raise RuntimeError("this view's run was released")  # _frames reruns the page before this
        return run

    # -- drawing one frame
    def frame(self) -> Frame:
        frame = Frame.of(self.run, self.session.replay.get(self.page))
        self.session.replay[self.page] = frame.replay_step
        return frame

    def draw_cards(self, cards: MetricCards, frame: Frame) -> None:
        shown = run_cards(
            self.run,
            frame.step(self.run),
            compare=self.compare,
            replayed=frame.replay_step is not None,
            counter_rate=self.session.page(f"{self.page}:rate", StepRate).add(self.run.step, self.run.playing),
        )
        for index, card in enumerate(shown):
            cards.show(index, card.label, card.value, help=card.help)

    # -- the frame loop
    def show(self) -> None:
        """The animated part of the page (cards, particle views, curves), in one fragment that Streamlit
        re-runs while playing; each run lays it out once and then redraws it in place, frame by frame."""
        live_fragment(self._frames, self.run.playing)

    def _layout(self) -> dict:
        """Placeholders for one fragment run, the picture first: the message, one view per arm, the
        cards, the display widgets and the curves."""
        run, slots = self.run, {"message": st.empty()}
        if self.compare:
            slots["cards"] = MetricCards([1 + len(run.trainers)])
            arms = st.columns(len(run.trainers))  # the arms side by side
            slots["views"] = {name: _in(col, LiveView, f"view_{name}") for col, name in zip(arms, run.trainers)}
            slots["difference"] = st.empty()
            slots["noise"], slots["status"] = st.empty(), StatusLine()
            layer_pickers(self.page)
            curves = st.columns(3)
        else:
            left, right = st.columns([3, 2])
            with left:
                if len(run.trainers) == 1:
                    slots["views"] = {"run": LiveView("view_run")}
                else:  # the network and the particles beside it
                    arms = st.columns(len(run.trainers))
                    slots["views"] = {name: _in(col, LiveView, f"view_{name}") for col, name in zip(arms, run.trainers)}
                slots["noise"], slots["status"] = st.empty(), StatusLine()
            with right:
                slots["cards"] = MetricCards([3, 3])
                self.game = predict.controls(self.page, run)
                layer_pickers(self.page)
                classroom.scenario_picker()
                curves = [st.container() for _ in range(3)]
        slots["curves"] = [_in(col, LiveView, f"curve_{i}") for i, col in enumerate(curves)]
        return slots

    def _frames(self) -> None:
        run = self._run()
        if run is None or self.session.runs.get(self.page) is not run:  # replaced (a scenario) or released
            st.rerun()
        ticks = frame_ticks(lambda: run.playing and not run.branches)  # branches train once per timer run
        last = self.session.page(f"{self.page}:frame", FrameBudget)
        curves_at = 0.0
        for index in ticks:
            budget = FrameBudget()
            self._train_chunk(budget, last)
            if index == 0:
                slots = self._layout()
            with budget.phase("snapshot"):
                frame = self.frame()
            if index and not run.playing:
                st.rerun()  # the evaluation paused the run (its outputs ran away): draw the page paused
            self._draw(frame, slots, budget, index)
            if index == 0 or time.perf_counter() - curves_at >= CURVES_S:
                curves_at = time.perf_counter()
                self._draw_curves(slots["curves"], budget, index)
            slots["status"].show(
                f"Budget: {run.step} / {run.base_config.train.steps} steps · {budget.describe()}",
                budget.train,
                budget.steps if self._fixed_steps else 0,
            )
            self.session.pages[f"{self.page}:frame"] = budget
            last = budget
            if index == 0:
                branches(self.session, self.page, run)
                if frame.replay_step is not None or not run.playing:
                    return

    @property
    def _fixed_steps(self) -> int:
        """Steps per frame, or 0 for "auto" (as many as fit the frame's training budget)."""
        return int(self.session.view.steps_per_frame)

    def _train_chunk(self, budget: FrameBudget, last: FrameBudget) -> None:
        """A bounded chunk of training while playing (:func:`drift_views.pacing.train_chunk`); a pause
        redraws the whole page with its reason."""
        if not self.run.playing:
            return
        with budget.phase("train"):
            budget.steps, reason = train_chunk(self.run, self._fixed_steps, last.drawing, limits().max_steps_per_frame)
        if reason:
            st.rerun()

    def _draw(self, frame: Frame, slots: dict, budget: FrameBudget, index: int) -> None:
        # why the run paused, why nothing moves, or an out-of-memory fallback
        message, warning = slots["message"], run_warning(self.run)
        message.warning(warning.text, icon=f":material/{warning.icon}:") if warning else message.empty()
        self.draw_cards(slots["cards"], frame)
        with budget.phase("figures"):
            height = classroom.plot_height(430 if self.compare else 540)
            built = arm_figures(self.run, frame, self.session.view, compare=self.compare, height=height)
            first = next(iter(built))
            noise = noise_note(self.run, frame, self.session.view, built[first])
            game = getattr(self, "game", None)
            guessing = game is not None and game.active and not self.run.playing and frame.replay_step is None
            if guessing:
                prediction_marks(built[first], game, figures.Style.of(self.session.view))
        with budget.phase("send"):
            for name, figure in built.items():
                click = slots["views"][name].draw(figure, index, clickable=guessing and name == first)
                if click and game.path is None:
                    game.take_click(click)
                    st.rerun(scope="fragment")  # draw the guess now
        slots["noise"].caption(noise) if noise else slots["noise"].empty()
        if "difference" in slots:
            slots["difference"].markdown(difference_sentence(self.run))

    def _draw_curves(self, views: list, budget: FrameBudget, index: int) -> None:
        with budget.phase("figures"):
            charts = figures.run_curves(
                self.run.histories, height=classroom.plot_height(200), style=figures.Style.of(lab().view)
            )
        with budget.phase("send"):
            for view, chart in zip(views, charts):
                view.draw(chart, index)


def _in(container, factory, *args):
    """``factory(*args)`` created inside ``container``."""
    with container:
        return factory(*args)


# ---- timeline, fork, branches ------------------------------------------------------------------------------
def timeline(session: LabSession, page: str, run: Run) -> None:
    """While paused, a slider over the kept snapshots and "live", and for a chosen step the fork panel
    (while playing it says how to scrub, so its value never lags behind the run)."""
    steps, chosen = session.timeline(page)
    if not steps:
        st.caption(
            ":material/history: Pause to scrub back through the kept frames and fork from one." if run.playing else ""
        )
        return
    st.select_slider(
        "Timeline (scrub back through training; 'live' is the run now)",
        steps + ["live"],
        format_func=lambda v: f"live (step {run.step})" if v == "live" else f"step {v}",
        **bound("timeline", "live" if chosen is None else chosen, partial(lab().choose_replay, page)),
    )
    if chosen is not None:
        fork_controls(page, run, chosen)


def fork_controls(page: str, run: Run, step: int) -> None:
    """New K / τ / N for a fork from the replayed step, and the button."""
    refusal = fork_refusal(run, step)
    with st.container(border=True):
        st.markdown(
            f"**Fork from step {step}**: "
            + (
                "every arm continues from there with new settings."
                if page == "compare"
                else "a branch trains next to this run with new settings."
            )
        )
        *columns, c4 = st.columns([1, 1, 1, 1.2])
        chosen = lab().fork_settings(page)
        for column, widget in zip(columns, fork_widgets(page == "compare")):
            name = widget.field
            config_widget(column, widget, chosen[name], partial(lab().choose_fork, page, name), key=f"fork_{name}")
        c4.button(
            "Fork",
            key="fork",
            type="primary",
            icon=":material/call_split:",
            disabled=bool(refusal),
            on_click=on_session,
            args=("fork", page, step),
            width="stretch",
            help=refusal or None,
        )
        if refusal:
            st.caption(f":material/info: {refusal}")


def branches(session: LabSession, page: str, run: Run) -> None:
    """The Playground's branches: trained along with the run (:meth:`LabSession.advance_branches`),
    drawn small, with the energy curves of the original and every branch."""
    if not run.branches:
        return
    if run.playing:
        session.advance_branches(page)
    c1, c2, c3 = st.columns([3, 1, 1])
    c1.markdown(f"##### Branches ({len(run.branches)})")
    c2.button(
        "+50 steps",
        key="branch_steps",
        icon=":material/fast_forward:",
        on_click=on_session,
        args=("advance_branches", page, 50),
        width="stretch",
        help="50 more steps for every branch (they also train while the run plays)",
    )
    c3.button(
        "Remove",
        key="branch_clear",
        icon=":material/delete:",
        type="tertiary",
        on_click=on_session,
        args=("remove_branches", page),
        width="stretch",
    )
    drawn, curves = branch_figures(run, session.view, classroom.plot_height(360))
    cols = st.columns(min(len(drawn), 2))
    for index, (figure, message) in enumerate(drawn):
        with cols[index % len(cols)]:
            LiveView(f"branch_{index}").draw(figure)
            if message:
                st.caption(message)
    LiveView("branch_curves").draw(curves)


def layer_pickers(page: str) -> None:
    """The arrow layers (and, on Compare, the difference layer; on the Playground, estimator noise)."""
    if page == "compare":
        c1, c2 = st.columns([3, 1])
        c1.pills("Layers", figures.LAYERS[:4], selection_mode="multi", **view_widget("compare_layers"))
        c2.toggle(
            "Difference layer",
            **view_widget("difference"),
            help="on the lookahead panel: a line from each particle to the same-noise particle of the baseline",
        )
        return
    st.pills(
        "Layers",
        figures.LAYERS,
        selection_mode="multi",
        **view_widget("layers"),
        help="V: the drift used for training; V⁺/V⁻: attraction to data / repulsion from generated; "
        "lookahead terms V₀..V_K (one colour each) drawn from the points z⁰..z^K they act on",
    )
    run = lab().runs.get(page)
    st.toggle(
        "Estimator noise",
        **view_widget("estimator_noise"),
        disabled=run is not None and not noise_applies(run),
        help="the drift is estimated from one mini-batch: this redraws the batch 8 times and shows how much V "
        "changes at 48 particles. Move the batch-size slider and watch the spread change.",
    )
