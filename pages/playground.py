"""Playground: live training on a 2D dataset with particles, drift arrows and live metrics."""
import streamlit as st
import torch

from drift_core.probes import density_on_grid, field_on_grid, grid_points
from ui import classroom, figures, safety, widgets
from ui.live_plot import LiveView
from ui.live import CURVES_S, FrameClock, MetricCards, StatusLine, frame_ticks, live_frame
from ui.runs import kernel_share_warning
from ui.state import needs_points, playground_run, transport_buttons
from ui.navigation_fix import ensure_navigation

ensure_navigation()

RUN_KEY = "playground_run"
ss = st.session_state

st.title("Playground")
st.caption("A small generator (noise → MLP → point) learns a 2D distribution by drifting. Press **Play**, then "
           "change K or τ while it runs. Faint grey: data; blue: generated particles; arrows: the drift "
           "each particle is pushed along (drawn longer than true size).")
safety.sync_after_fallback(RUN_KEY)
config = widgets.load_config()
classroom.apply_presenter()
with st.container():
    widgets.show_url_notices()
widgets.data_controls(config)
widgets.training_controls(config)
safety.checkpoint_controls(RUN_KEY)
st.sidebar.markdown("#### :material/palette: Display")
st.sidebar.slider("Arrow length ×", 1, 50, **widgets.bind_view("arrow_scale"),
                  help="arrows are drawn this many times their true length")
config = widgets.current_config()
steps_per_frame = int(widgets.view_setting("steps_per_frame"))
widgets.sync_url(config, {"steps_per_frame": steps_per_frame, **classroom.url_extras()})

if needs_points(config):
    st.info("Upload a CSV of x,y points in the sidebar ('Your own points') to train on your own data.", icon=":material/upload_file:")
    st.stop()

run, event = playground_run(RUN_KEY, config)
ss["pg_run_key"] = RUN_KEY
clicked = transport_buttons("pg_", run)
if clicked["reset"]:
    run, event = playground_run(RUN_KEY, config, force_reset=True)
if clicked["step"]:
    run.playing = False
    if run.trainer.diverged:
        run.resume_after_divergence()
    run.advance(1)
if event.describe():
    ss["pg_note"] = event.describe()
with st.container():  # notes that come and go sit in containers: the elements below keep their places
    if ss.get("pg_note"):
        st.caption(ss["pg_note"])
with st.container():
    safety.divergence_controls(RUN_KEY, "pg_")
with st.container():
    classroom.scenario_buttons(RUN_KEY)
st.pills("Layers", figures.LAYERS, selection_mode="multi", **widgets.bind_view("layers"),
         help="V: the drift used for training; V⁺/V⁻: attraction to data / repulsion from generated; "
              "lookahead terms V₀..V_K (one colour each) drawn from the points z⁰..z^K they act on")
st.toggle("Estimator noise (redraw the batch 8× and show how much V changes)", key="pg_noise",
          help="the drift is estimated from one mini-batch; this shows its spread at 48 particles. "
               "Move the batch-size slider and watch the spread change.")


def train_chunk(run) -> tuple[float, int]:
    """A bounded chunk of training steps while playing: (training seconds, steps)."""
    if not run.playing:
        return 0.0, 0
    adv = run.advance(steps_per_frame, wait=False)  # a frame never queues behind another run's training
    if adv.paused_reason:
        st.rerun()  # redraw the page paused, with the reason
    return adv.train_s, len(adv.records)


def draw_view(run, snap, replay, slots: dict, frame_index: int) -> str:
    """The run's message, the metric cards and the particle view, into their placeholders. Returns the title."""
    if run.message:
        slots["message"].warning(run.message, icon=":material/pause_circle:")
    elif kernel_share_warning(run.kernel_share, run.config):
        slots["message"].warning(kernel_share_warning(run.kernel_share, run.config), icon=":material/visibility_off:")
    else:
        slots["message"].empty()
    layers = set(widgets.view_setting("layers") or [])
    grid = grid_field = density = None
    if "field on a grid" in layers:
        grid = grid_points(run.bounds, 21)
        grid_field = field_on_grid(grid, torch.as_tensor(snap.generated), torch.as_tensor(snap.positives),
                                   run.config.drift).numpy()
        grid = grid.numpy()
    if "density" in layers:
        density = density_on_grid(snap.generated, run.bounds, 60)
    last = run.trainer.last_record
    metrics = run.history.metrics[-1].values if run.history.metrics else {}
    cards = slots["cards"]
    cards.show(0, "Step", f"{run.step}")
    cards.show(1, "Loss ‖V‖²", f"{last.loss:.2e}" if last else "–")
    cards.show(2, "Drift RMS", f"{last.drift_rms[0]:.2e}" if last and last.drift_rms else "–",
               help="RMS of the base drift term: falls towards the noise floor as the model matches the data")
    cards.show(3, "Energy distance", f"{metrics['energy']:.4f}" if "energy" in metrics else "–",
               help="to a fixed data sample; 0 when the distributions match")
    cards.show(4, "Sliced W₂", f"{metrics['sliced_w2']:.4f}" if "sliced_w2" in metrics else "–")
    if "modes_covered" in metrics:
        cards.show(5, "Modes covered", f"{metrics['modes_covered']:.0f}/{len(run.evaluator.modes)}")
    else:
        rate = (run.step / run.trainer.wall_s) if run.trainer.wall_s > 0 else 0.0
        cards.show(5, "Steps / s", f"{rate:.0f}", help="training steps per second of training time")
    title = f"{run.config.drift.label()} · τ = {run.config.drift.tau:g} · N = {run.config.train.batch_size}"
    if replay is not None:
        title = f"replay of step {snap.step} · " + title
    figure = figures.particle_figure(snap, run.bounds, layers, arrow_scale=float(widgets.view_setting("arrow_scale")),
                                     grid=grid, grid_field=grid_field, density=density, title=title,
                                     height=classroom.plot_height(540))
    noise = None
    if ss.get("pg_noise") and replay is None:
        noise = classroom.noise_layer(run, figure, float(widgets.view_setting("arrow_scale")))
    slots["chart"].draw(figures.fast_figure(figure), frame_index)
    if noise is not None:
        slots["noise"].caption(classroom.noise_caption(noise))
    else:
        slots["noise"].empty()
    return title


def draw_status(run, status: StatusLine, train_s: float, trained: int, clock: FrameClock) -> None:
    status.show(f"Budget: {run.step} / {run.config.train.steps} steps · {steps_per_frame} step(s) per frame · "
                f"{run.frames_drawn} frames drawn · this frame: training {train_s * 1000:.0f} ms, "
                f"total {clock.elapsed() * 1000:.0f} ms", train_s, trained)


def frame() -> None:
    """The animation frames of one run: each trains a bounded chunk of steps, then redraws the cards and
    the particle view. The first frame also draws the widgets (timeline, fork, branches, export); in a
    timer run (see ui.live.frame_ticks) the following frames redraw only the placeholders."""
    run = ss[RUN_KEY]
    ticks = frame_ticks(lambda: run.playing and not run.branches)
    next(ticks)
    clock = FrameClock()
    train_s, trained = train_chunk(run)
    # every element above the particle view sits in a fixed placeholder, so the view keeps its place in
    # the page from run to run (a shifted position would rebuild it)
    slots = {"message": st.empty()}
    with st.empty():
        safety.show_fallback_notice(RUN_KEY)
    slots["cards"] = MetricCards([3, 3])
    snap = run.frame()
    with st.empty():  # the timeline appears once two snapshots are kept
        replay = classroom.timeline("pg_", run.history.snapshots)
    if replay is not None:
        snap = run.history.snapshots[replay]
    slots["chart"], slots["noise"] = LiveView("pg_particles"), st.empty()
    title = draw_view(run, snap, replay, slots, 0)
    if replay is not None:
        fork = classroom.fork_controls("pg_", run.config, snap.step,
                                       run.can_fork(snap.step))
        if fork is not None:
            classroom.make_branch(run, snap.step, fork)
    slots["status"] = StatusLine()
    draw_status(run, slots["status"], train_s, trained, clock)
    classroom.branches_panel(RUN_KEY, run, steps_per_frame, arrow_scale=float(widgets.view_setting("arrow_scale")))
    with st.expander("Export this run: GIF / MP4, metrics CSV, config JSON", icon=":material/download:"):
        classroom.export_buttons("pg_", run.config, run.history, title=title)
    if replay is not None:
        return
    for index in ticks:
        clock = FrameClock()
        train_s, trained = train_chunk(run)
        snap = run.frame()
        draw_view(run, snap, None, slots, index)
        draw_status(run, slots["status"], train_s, trained, clock)


def curves() -> None:
    """Metric curves against step and against training (wall-clock) time, refreshed once a second."""
    run = ss[RUN_KEY]
    records = run.history.record_rows(400)
    metric_rows = run.history.metric_rows(400)
    loss_rows = [{"step": r["step"], "wall_s": r["wall_s"], "loss": r["loss"], "series": "loss"} for r in records
                 if r["loss"] == r["loss"]]
    st.vega_lite_chart(spec=figures.chart_spec(figures.curves_chart(loss_rows, "step", "loss", title="loss vs step", log_y=True)), width="stretch", height=230)
    energy = figures.long_rows({"energy distance": metric_rows}, "step", "energy")
    st.vega_lite_chart(spec=figures.chart_spec(figures.curves_chart(energy, "step", "energy", title="energy distance vs step")), width="stretch", height=230)
    energy_t = figures.long_rows({"energy distance": metric_rows}, "wall_s", "energy")
    st.vega_lite_chart(spec=figures.chart_spec(figures.curves_chart(energy_t, "wall_s", "energy", title="energy distance vs training time")), width="stretch", height=230)


left, right = st.columns([3, 2])
with left:
    live_frame(frame, run.playing)
with right:
    live_frame(curves, run.playing, CURVES_S)
