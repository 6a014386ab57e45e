"""Compare: baseline and lookahead (and optionally baseline with 2× learning rate) in lock-step."""
import streamlit as st

from ui import classroom, figures, widgets
from ui.live import CURVES_S, MetricCards, StatusLine, frame_ticks, live_frame
from ui.live_plot import LiveView
from ui.runs import kernel_share_warning
from ui.state import compare_run, needs_points, transport_buttons
from ui.navigation_fix import ensure_navigation

ensure_navigation()

RUN_KEY = "compare_run"
ss = st.session_state

st.title("Compare")
st.caption("Baseline and lookahead drifting start from the **same weights** and train on the **same noise and data "
           "batches**, so any difference comes from the drift alone. Lookahead does more work per step: the "
           "*training time* curves and the optional 2× learning-rate baseline keep the comparison fair.")
config = widgets.load_config()
classroom.apply_presenter()
with st.container():
    widgets.show_url_notices()
widgets.data_controls(config)
st.sidebar.toggle("Add a baseline with 2× learning rate (fairness control; restarts)", **widgets.bind_view("fairness"))
widgets.training_controls(config, lookahead_arm=True)
st.sidebar.markdown("#### :material/palette: Display")
st.sidebar.slider("Arrow length ×", 1, 50, **widgets.bind_view("arrow_scale"))
config = widgets.current_config()
fairness = bool(widgets.view_setting("fairness"))
steps_per_frame = int(widgets.view_setting("steps_per_frame"))
widgets.sync_url(config, {"steps_per_frame": steps_per_frame, "fairness": fairness, **classroom.url_extras()})

if needs_points(config):
    st.info("Upload a CSV of x,y points in the sidebar ('Your own points') to compare on your own data.", icon=":material/upload_file:")
    st.stop()

run, event = compare_run(RUN_KEY, config, fairness)
ss["cmp_run_key"] = RUN_KEY
clicked = transport_buttons("cmp_", run)
if clicked["reset"]:
    run, event = compare_run(RUN_KEY, config, fairness, force_reset=True)
if clicked["step"]:
    run.playing = False
    run.advance(1)
if event.describe():
    ss["cmp_note"] = event.describe()
with st.container():  # a note that comes and goes must not shift the live elements below it
    if ss.get("cmp_note"):
        st.caption(ss["cmp_note"])
c1, c2 = st.columns([3, 1])
c1.pills("Layers", figures.LAYERS[:4], selection_mode="multi", **widgets.bind_view("cmp_layers"))
c2.toggle("Difference layer", **widgets.bind_view("cmp_difference"),
          help="on the lookahead panel: a line from each particle to the same-noise particle of the baseline")


def train_chunk(run) -> tuple[float, int]:
    """A bounded chunk of lock-step training while playing: (training seconds, steps per arm)."""
    if not run.playing:
        return 0.0, 0
    adv = run.advance(steps_per_frame, wait=False)  # a frame never queues behind another run's training
    if adv.paused_reason:
        st.rerun()
    return adv.train_s, len(adv.records) // max(1, len(run.trainers))


def draw_view(run, snaps, replay_step, slots: dict, frame_index: int) -> None:
    """Message, metric cards and one particle view per arm, into the places ``frame`` laid out."""
    if run.message:
        slots["message"].warning(run.message, icon=":material/pause_circle:")
    elif kernel_share_warning(run.kernel_share, run.base_config):
        slots["message"].warning(kernel_share_warning(run.kernel_share, run.base_config), icon=":material/visibility_off:")
    else:
        slots["message"].empty()
    names = list(run.trainers)
    cards = slots["cards"]
    cards.show(0, "Step", f"{run.step}")
    for index, name in enumerate(names, start=1):
        metrics = run.histories[name].metrics[-1].values if run.histories[name].metrics else {}
        wall = run.trainers[name].wall_s
        cards.show(index, f"{name}: energy distance", f"{metrics['energy']:.4f}" if "energy" in metrics else "–",
                   help=f"training time so far: {wall:.1f} s")
    layers = set(widgets.view_setting("cmp_layers") or [])
    for name in names:
        trainer = run.trainers[name]
        other = snaps["baseline"].generated if (name == "lookahead" and widgets.view_setting("cmp_difference")) else None
        title = f"{trainer.config.drift.label()} · lr {trainer.config.train.lr:g} · {trainer.wall_s:.1f} s of training"
        if replay_step is not None:
            title = f"step {snaps[name].step} (replay) · " + title
        figure = figures.particle_figure(snaps[name], run.bounds, layers, arrow_scale=float(widgets.view_setting("arrow_scale")),
                                         title=title, height=classroom.plot_height(430), other=other,
                                         other_name="baseline", uirevision="compare")
        slots["views"][name].draw(figures.fast_figure(figure), frame_index)


def draw_status(run, status: StatusLine, train_s: float, trained: int) -> None:
    status.show(f"Budget: {run.step} / {run.base_config.train.steps} steps · {steps_per_frame} step(s) per frame",
                train_s, trained)


def frame() -> None:
    """The frames of one run (see ui.live.frame_ticks): each trains every arm a chunk of steps in
    lock-step and redraws; the first also draws the timeline, fork and export widgets."""
    run = ss[RUN_KEY]
    ticks = frame_ticks(lambda: run.playing)
    next(ticks)
    train_s, trained = train_chunk(run)
    slots = {"message": st.empty()}
    snaps = run.frames()
    first = next(iter(run.histories.values()))
    with st.empty():  # a fixed place, so the views below keep theirs when the timeline appears
        replay = classroom.timeline("cmp_", first.snapshots)
    replay_step = None
    if replay is not None:
        replay_step = first.snapshots[replay].step
        snaps = {name: classroom.snapshot_at(h, replay_step) for name, h in run.histories.items()}
    slots["cards"] = MetricCards([1 + len(run.trainers)])
    slots["views"] = {}
    for col, name in zip(st.columns(len(run.trainers)), run.trainers):  # one live view per arm, side by side
        with col:
            slots["views"][name] = LiveView(f"cmp_{name}")
    draw_view(run, snaps, replay_step, slots, 0)
    slots["status"] = StatusLine()
    draw_status(run, slots["status"], train_s, trained)
    if replay is not None:
        classroom.compare_fork_controls(RUN_KEY, "cmp_", run.base_config, replay_step)
    with st.expander("Export this comparison: side-by-side GIF / MP4, metrics CSV, config JSON",
                     icon=":material/download:"):
        classroom.compare_export_buttons("cmp_", run.base_config, run.histories)
    if replay is not None:
        return
    for index in ticks:
        train_s, trained = train_chunk(run)
        snaps = run.frames()
        draw_view(run, snaps, None, slots, index)
        draw_status(run, slots["status"], train_s, trained)


def curves() -> None:
    """Shared curves of all arms against step and against training time, refreshed once a second."""
    run = ss[RUN_KEY]
    metric_rows = {name: h.metric_rows(300) for name, h in run.histories.items()}
    record_rows = {name: h.record_rows(300) for name, h in run.histories.items()}
    g1, g2, g3 = st.columns(3)
    g1.vega_lite_chart(spec=figures.chart_spec(figures.curves_chart(figures.long_rows(metric_rows, "step", "energy"), "step", "energy",
                                         title="energy distance vs step")), width="stretch", height=230)
    g2.vega_lite_chart(spec=figures.chart_spec(figures.curves_chart(figures.long_rows(metric_rows, "wall_s", "energy"), "wall_s", "energy",
                                         title="energy distance vs training time")), width="stretch", height=230)
    g3.vega_lite_chart(spec=figures.chart_spec(figures.curves_chart(figures.long_rows(record_rows, "step", "loss"), "step", "loss",
                                         title="loss vs step", log_y=True)), width="stretch", height=230)


live_frame(frame, run.playing)
live_frame(curves, run.playing, CURVES_S)
