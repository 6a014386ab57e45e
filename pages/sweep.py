"""Sweep: train a small grid over two hyperparameters and compare the final distributions."""
from ui.navigation_fix import ensure_navigation

ensure_navigation()  # first: a deep link on a fresh server runs this page alone (see ui.navigation_fix)

import streamlit as st

from drift_core.data.toy2d import SAMPLERS
from drift_core.sweep import METRICS
from ui import classroom, controls
from ui import sweep_view as sv

ss = st.session_state

st.title("Sweep")
st.caption("Pick two settings and a few values of each: Drift Lab trains one small run per cell (same seed, same "
           "network, only the two settings differ) and colours the grid by the final distance to the data. "
           "Click a cell, or its **Open** button, to continue with that configuration in the Playground. "
           "Finished cells are cached, so running the same sweep again is instant.")

if controls.open_session().view.presenter:
    classroom.exit_presenter_button()
base = sv.sweep_base_config()
sv.prepare()
sb = st.sidebar
sb.markdown("#### :material/grid_on: Grid")
if "sw_dataset" not in ss:
    ss["sw_dataset"] = base.data.dataset if base.data.dataset in SAMPLERS else "8gaussians"
dataset = sb.selectbox("Dataset", list(SAMPLERS), key="sw_dataset")
x_axis, x_values = sv.axis_picker("x", "K")
y_axis, y_values = sv.axis_picker("y", "tau", exclude=x_axis)
if "sw_steps" not in ss:
    ss["sw_steps"] = 200
steps = sb.number_input("Training steps per cell", min_value=1, max_value=5000, step=50, key="sw_steps")
sb.caption(f"Every cell uses your current settings for everything else: seed {base.train.seed}, network "
           f"{base.model.width}×{base.model.depth}, N = {base.train.batch_size}, τ = {base.drift.tau:g}, "
           f"lr = {base.train.lr:g}, {base.drift.label()}.")
spec, problem = sv.build_spec(base, dataset, x_axis, x_values, y_axis, y_values, int(steps))

job = ss.get(sv.JOB_KEY)
if job is not None and job.done and job.result is not None and ss.get(sv.RESULT_KEY) is not job.result:
    ss[sv.RESULT_KEY] = job.result
result = ss.get(sv.RESULT_KEY)
opening = ss.pop("sweep_open", None)
if opening is not None and result is not None:
    sv.open_in_playground(result.spec.cell_config(*opening))

running = job is not None and not job.done
cols = st.columns([1.4, 1.1, 4])
cols[0].button("Run sweep", icon=":material/play_arrow:", key="sw_run", type="primary", disabled=spec is None or running, width="stretch",
               on_click=sv.start, args=(spec,) if spec is not None else None)
cols[1].button("Cancel", icon=":material/stop:", key="sw_cancel", disabled=not running, on_click=sv.cancel, width="stretch")
if spec is not None:
    cells = spec.shape[0] * spec.shape[1]
    cols[2].caption(f"{spec.shape[0]} × {spec.shape[1]} = {cells} cells × {spec.steps} steps "
                    f"= {cells * spec.steps:,} training steps")
else:
    cols[2].warning(problem, icon=":material/block:")
if job is not None and job.error:
    st.error(f"The sweep failed: {job.error}")

def progress_panel() -> None:
    current = ss.get(sv.JOB_KEY)
    if current is None:
        return
    if not current.done:
        label = "cancelling…" if current.cancelled else current.message
        st.progress(min(1.0, current.fraction), text=f"{current.fraction:.0%} · {label}")
    elif current.result is not None and ss.get(sv.RESULT_KEY) is not current.result:
        st.rerun()  # draw the finished sweep

st.fragment(run_every=sv.POLL_S if running else None)(progress_panel)()

if result is not None:
    if result.cancelled:
        done = sum(1 for row in result.cells for c in row if c is not None)
        st.warning(f"Cancelled: {done} of {result.spec.shape[0] * result.spec.shape[1]} cells finished "
                   "(they are cached; run again to finish the rest).", icon=":material/stop_circle:")
    st.caption(f"{result.spec.base.data.dataset} · {result.cached_cells} cell(s) from the cache · "
               f"{result.seconds:.1f} s")
    if "sw_metric" not in ss:
        ss["sw_metric"] = "energy"
    metric = st.segmented_control("Metric", list(METRICS), key="sw_metric", format_func=lambda m: METRICS[m][0])
    metric = metric or "energy"
    if metric == "modes" and result.spec.base.data.dataset not in ("8gaussians", "25gaussians", "bimodal"):
        st.info("Mode coverage is defined for the mixture datasets (8gaussians, 25gaussians, bimodal) only.")
    event = st.plotly_chart(sv.heatmap_figure(result, metric, height=classroom.plot_height(420)), key="sw_heatmap",
                            on_select="rerun",
                            selection_mode="points", config={"displaylogo": False})
    picked = sv.selected_cell(event, result)
    if picked is not None:
        i, j = picked
        c1, c2 = st.columns([3, 1])
        c1.markdown(f"Selected: **{result.spec.y_axis} = {result.spec.y_values[i]:g}**, "
                    f"**{result.spec.x_axis} = {result.spec.x_values[j]:g}**")
        c2.button("Open in Playground", icon=":material/open_in_new:", key="sw_open_selected", type="primary", on_click=sv.request_open,
                  args=(i, j))
    best = result.best_cell(metric)
    if best is not None:
        st.caption(f"Best {METRICS[metric][0]}: {result.spec.y_axis} = {result.spec.y_values[best[0]]:g}, "
                   f"{result.spec.x_axis} = {result.spec.x_values[best[1]]:g}.")
    st.markdown("##### Final particles (blue) over the data (grey)")
    values = result.grid(metric)
    for i in range(result.spec.shape[0]):
        row = st.columns(result.spec.shape[1])
        for j, col in enumerate(row):
            png = sv.thumbnail_png(result, i, j)
            if png is None:
                col.caption("not run")
                continue
            col.image(png, width=240)
            note = " · diverged" if result.cells[i][j].diverged else ""
            col.caption(f"{METRICS[metric][0]}: {values[i, j]:.3g}{note}")
            col.button("Open", icon=":material/open_in_new:", key=f"sw_open_{i}_{j}", on_click=sv.request_open, args=(i, j),
                       help="continue with this configuration in the Playground")
    d1, d2 = st.columns(2)
    d1.download_button("Results (CSV)", sv.results_csv(result), file_name="sweep.csv", mime="text/csv",
                       icon=":material/download:",
                       key="sw_dl_csv", on_click="ignore")
    d2.download_button("Heatmap (PNG)", sv.heatmap_png(result, metric), file_name=f"sweep_{metric}.png",
                       icon=":material/download:",
                       mime="image/png", key="sw_dl_png", on_click="ignore")
elif not running:
    st.info("Choose the axes and values in the sidebar, then press **Run sweep**.", icon=":material/grid_on:")
