"""Inspector: one training step in slow motion, and a kernel lens on any particle."""
import numpy as np
import streamlit as st

from drift_core.probes import effective_neighbours, inspect_step
from drift_core.train import DivergedError
from ui import figures, widgets
from ui.live import live_frame
from ui.state import needs_points, playground_run, transport_buttons
from ui.navigation_fix import ensure_navigation

ensure_navigation()

RUN_KEY = "inspector_run"
STAGE_S = 0.6
STAGES = ("noise", "outputs", "batch", "kernel", "V⁺ V⁻ V", "lookahead", "targets", "loss", "optimiser step", "moved")
STAGE_TITLES = {
    "noise": "1 · Sample noise ε",
    "outputs": "2 · Generator outputs x = f(ε)",
    "batch": "3 · Draw a data batch (positives)",
    "kernel": "4 · Kernel matrix",
    "V⁺ V⁻ V": "5 · Attraction V⁺, repulsion V⁻, drift V₀ = V⁺ − V⁻",
    "lookahead": "6 · Lookahead points z⁰..z^K",
    "targets": "7 · Drifted targets x + V",
    "loss": "8 · Loss ‖x − stopgrad(x + V)‖²",
    "optimiser step": "9 · Optimiser step",
    "moved": "10 · Where the outputs actually moved",
}
ss = st.session_state

st.title("Inspector")
st.caption("One training step in slow motion, on a small batch so every particle can be seen. Press **Play** to "
           "walk through the stages (a new step starts after the last), or move the stage slider. Click a "
           "generated particle (blue) to open its kernel lens below.")
config = widgets.load_config()
widgets.show_url_notices()
widgets.data_controls(config, upload=True)
widgets.training_controls(config, batch=False, speed=False)
st.sidebar.select_slider("Particles (batch size for this page)", [16, 32, 48, 64, 96, 128],
                         **widgets.bind_view("inspect_n"))
config = widgets.current_config()
widgets.sync_url(config, {"steps_per_frame": int(widgets.view_setting("steps_per_frame"))})
if needs_points(config):
    st.info("Upload a CSV of x,y points in the sidebar ('Your own points') to inspect a step on your own data.", icon=":material/upload_file:")
    st.stop()

inspect_config = config.with_values({"batch_size": int(widgets.view_setting("inspect_n")), "steps": 10**6})
run, event = playground_run(RUN_KEY, inspect_config)
ss["ins_run_key"] = RUN_KEY


def new_step() -> None:
    """Take one inspected training step (a real step of the page's own trainer)."""
    current = ss[RUN_KEY]
    try:
        with current.lock:  # one step at a time per run, whatever script runs overlap
            ss["inspection"] = inspect_step(current.trainer)
        ss["inspection_error"] = ""
    except DivergedError as err:
        ss["inspection_error"] = str(err)
        current.playing = False
    ss["stage"] = STAGES[0]


clicked = transport_buttons("ins_", run, step_label="Next step")
if clicked["reset"] or event.kind == "reset":
    if clicked["reset"]:
        run, event = playground_run(RUN_KEY, inspect_config, force_reset=True)
    ss.pop("inspection", None)
if clicked["step"]:
    run.playing = False
    new_step()
if "inspection" not in ss or ss.get("inspection_run") is not run:
    ss["inspection_run"] = run
    new_step()
if event.describe():
    ss["ins_note"] = event.describe()
if ss.get("ins_note"):
    st.caption(ss["ins_note"])


def _move_stage(delta: int) -> None:
    i = STAGES.index(ss.get("stage", STAGES[0])) + delta
    ss["stage"] = STAGES[min(max(i, 0), len(STAGES) - 1)]


def _pick_particle() -> None:
    """on_select of the stage picture: the clicked generated particle (its customdata is its index)."""
    event = ss.get("ins_stage_chart") or {}
    for point in (event.get("selection") or {}).get("points", []):
        custom = point.get("customdata")
        if isinstance(custom, (int, float)):
            ss["lens_particle"] = int(custom)
            return


def body() -> None:
    run = ss[RUN_KEY]
    if run.playing:
        i = STAGES.index(ss.get("stage", STAGES[0]))
        if i + 1 < len(STAGES):
            ss["stage"] = STAGES[i + 1]
        else:
            new_step()
            if not run.playing:
                st.rerun()
    if ss.get("inspection_error"):
        st.warning(f"{ss['inspection_error']}. Press Reset (and lower the learning rate).", icon=":material/pause_circle:")
    ins = ss["inspection"]
    if "stage" not in ss:
        ss["stage"] = STAGES[0]
    top = st.columns(4)
    top[0].metric("Step", f"{ins.step}")
    top[1].metric("Loss", f"{ins.loss:.1e}")
    top[2].metric("Achieved / target", f"{ins.achieved_fraction:.2f}",
                  help="mean projection of the actual move on the target move V (1 = exactly as intended)")
    top[3].metric("Lookahead terms", f"{len(ins.terms) - 1}")
    with st.container():
        nav = st.columns([1, 12, 1])
        nav[0].button("", icon=":material/chevron_left:", key="ins_prev_stage", on_click=_move_stage, args=(-1,), help="previous stage")
        nav[1].select_slider("Stage", STAGES, key="stage", format_func=lambda s: STAGE_TITLES[s],
                             label_visibility="collapsed")
        nav[2].button("", icon=":material/chevron_right:", key="ins_next_stage", on_click=_move_stage, args=(1,), help="next stage")
    stage = ss["stage"]
    st.markdown(f"### {STAGE_TITLES[stage]}")
    left, right = st.columns([3, 2])
    n, p = ins.outputs.shape[0], ins.positives.shape[0]
    with right:
        st.markdown(_explain(stage, ins, n, p))
        if stage == "kernel":
            st.plotly_chart(figures.fast_figure(figures.kernel_matrix_figure(ins.w_pos, ins.w_neg)), key="ins_kernel",
                            config={"displaylogo": False})
    with left:
        fig = figures.stage_figure(ins, stage, run.bounds, arrow_scale=float(widgets.view_setting("arrow_scale")))
        if stage != "noise":
            st.plotly_chart(figures.fast_figure(fig), key="ins_stage_chart", on_select=_pick_particle, selection_mode="points",
                            config={"displaylogo": False})
        else:
            st.plotly_chart(figures.fast_figure(fig), key="ins_noise_chart", config={"displaylogo": False})
    _lens(ins, run)


def _explain(stage: str, ins, n: int, p: int) -> str:
    vnorm = np.sqrt((ins.v ** 2).sum(1))
    if stage == "noise":
        return (f"{n} noise vectors ε ~ N(0, I) of dimension {ins.noise.shape[1]} (the picture shows their first "
                "two coordinates). Each one becomes one generated point.")
    if stage == "outputs":
        return f"The generator maps each ε to a point x = f(ε): {n} blue particles. No data is involved yet."
    if stage == "batch":
        return f"{p} real data points (green) are drawn: the *positives* that attract the particles."
    if stage == "kernel":
        neighbours = np.mean([effective_neighbours(w) for w in ins.w_pos])
        hint = ("" if neighbours >= 1.5 else f"\n\n**Note:** with τ = {ins.tau:g} each particle sees only about "
                f"{neighbours:.1f} positive(s): the kernel is narrow for {n} points, so V is tiny. Try a larger τ.")
        return (f"Every particle i is compared with every positive and every other particle through the kernel "
                f"exp(−‖x − y‖/τ), τ = {ins.tau:g}, normalised over rows and columns and cross-weighted (W⁺ | W⁻). "
                "Bright cells are close pairs. The diagonal of W⁻ (a particle with itself) is masked." + hint)
    if stage == "V⁺ V⁻ V":
        return ("V⁺ (green) pulls each particle towards nearby data; V⁻ (red, drawn as −V⁻) pushes it away from "
                "nearby particles. Their difference V₀ (black) is the drift: it vanishes when the particles "
                "match the data. Arrows are drawn longer than true size.")
    if stage == "lookahead":
        k = len(ins.terms) - 1
        if k == 0:
            return "Baseline (K = 0): no lookahead terms; V = V₀. Choose *lookahead* and K ≥ 1 to see them."
        return (f"Lookahead computes {k} more term(s): z^(k+1) = z^k + α V_k, and each V_k is the drift of the moved "
                f"set z^k (one colour per term, true length). The training move is Σ w_k V_k, weights "
                f"{', '.join(f'{w:g}' for w in ins.weights)}.")
    if stage == "targets":
        return (f"Each particle's target is x + V (orange), a frozen point (stop-gradient). Mean ‖V‖ = "
                f"{vnorm.mean():.2e}, largest {vnorm.max():.2e}.")
    if stage == "loss":
        return (f"The loss is the mean squared distance to the frozen targets: mean(V²) = **{ins.loss:.3e}**. Its "
                "gradient pulls each output towards its target; the drift itself gets no gradient.")
    if stage == "optimiser step":
        return (f"Adam (lr {ins.record.lr:g}) updates the generator's weights once. The network cannot move every "
                "point independently: all points move together through shared weights.")
    return (f"Orange: the target move V. Black: where f(ε) actually moved after the step (purple dots). Tracking "
            f"error RMS = {ins.tracking_error:.2e}; achieved/target = {ins.achieved_fraction:.2f}.")


def _lens(ins, run) -> None:
    st.markdown("### Kernel lens")
    n = ins.outputs.shape[0]
    if "lens_particle" not in ss or ss["lens_particle"] >= n:
        ss["lens_particle"] = 0
    left, right = st.columns([3, 2])
    with right:
        st.number_input("Particle", min_value=0, max_value=n - 1, step=1, key="lens_particle",
                        help="or click a blue particle in the picture above")
        i = int(ss["lens_particle"])
        w_pos, w_neg = ins.w_pos[i], ins.w_neg[i]
        st.markdown(
            f"Particle **{i}** at ({ins.outputs[i, 0]:.3f}, {ins.outputs[i, 1]:.3f}).\n\n"
            f"- Weight on positives Σ W⁺ = {w_pos.sum():.3g}, effective neighbours {effective_neighbours(w_pos):.1f}\n"
            f"- Weight on negatives Σ W⁻ = {w_neg.sum():.3g}, effective neighbours {effective_neighbours(w_neg):.1f}\n"
            f"- Within distance τ = {ins.tau:g}: {(ins.distance[i, :ins.positives.shape[0]] < ins.tau).sum()} "
            f"positives, {(np.delete(ins.distance[i, ins.positives.shape[0]:], i) < ins.tau).sum()} other particles\n"
            f"- Drift V = ({ins.v[i, 0]:.2e}, {ins.v[i, 1]:.2e})\n\n"
            "Marker size shows each neighbour's weight. A larger τ widens the lens; a smaller τ makes "
            "each particle see only its nearest neighbours."
        )
    with left:
        st.plotly_chart(figures.fast_figure(figures.lens_figure(ins, i, run.bounds)), key="ins_lens", config={"displaylogo": False})


live_frame(body, run.playing, STAGE_S)
