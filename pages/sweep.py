"""Sweep: train a small grid over two hyperparameters, each cell over a few seeds, and compare the
final distributions."""

from ui.navigation_fix import ensure_navigation

ensure_navigation()  # first: a deep link on a fresh server runs this page alone (see ui.navigation_fix)

import streamlit as st

from drift_core.sweep import METRICS
from drift_views import sweep as views
from drift_views.downloads import sweep_downloads
from ui import classroom, controls
from ui import sweep_view as sv
from ui.session import bound, chart_selection

session = controls.open_session()
controls.show_notices(session)
st.markdown("### Sweep")
if session.view.presenter:
    classroom.exit_presenter_button()
st.caption(
    "Pick two settings and a few values of each: Drift Lab trains one small run per cell and seed (the "
    "same network, only the two settings and the seed differ) and colours the grid by the final distance "
    "to the data, averaged over the seeds. Select a cell (click it, or pick it below the heatmap) and "
    "**Open in Playground** to start a new run with its settings there, from step 0. Finished runs are "
    "cached, so running the same sweep again is instant."
)

base = views.sweep_base_config(session.config)  # on a session's first page, the URL's settings
presenter = session.view.presenter
state = sv.page_state(base)
sv.prepare()
spec, problem = sv.grid_controls(state, base)

state.take_finished()
result = state.result
if (opened := state.take_open_request()) is not None:
    sv.open_in_playground(opened)

job = state.job
running = job is not None and not job.done
cols = st.columns([1.4, 1.1, 4])
cols[0].button(
    "Run sweep",
    icon=":material/play_arrow:",
    key="sw_run",
    type="primary",
    disabled=spec is None or running,
    width="stretch",
    on_click=state.start,
    args=(spec,) if spec is not None else None,
    kwargs={"here": sv.sweep_here()},
)
cols[1].button(
    "Cancel",
    icon=":material/stop:",
    key="sw_cancel",
    disabled=not running,
    on_click=state.cancel,
    width="stretch",
)
if spec is not None:
    cols[2].caption(views.grid_size(spec))
else:
    cols[2].warning(problem, icon=":material/block:")
if job is not None and job.error:
    st.error(f"The sweep failed: {job.error}")


def progress_panel() -> None:
    current = state.job
    if current is None:
        return
    if not current.done:
        label = "cancelling…" if current.cancelled else current.message
        st.progress(min(1.0, current.fraction), text=f"{current.fraction:.0%} · {label}")
    elif current.result is not None and state.result is not current.result:
        st.rerun()  # draw the finished sweep


st.fragment(run_every=sv.POLL_S if running else None)(progress_panel)()

if result is not None:
    rspec = result.spec
    if result.cancelled:
        st.warning(views.cancelled_note(result), icon=":material/stop_circle:")
    st.caption(f"{rspec.base.data.dataset} · {result.cached_trials} run(s) from the cache · {result.seconds:.1f} s")
    metric = st.segmented_control(
        "Metric",
        list(METRICS),
        format_func=lambda m: METRICS[m][0],
        **bound("sw_metric", state.metric, lambda m: setattr(state, "metric", m or state.metric)),
    )
    metric = metric or state.metric
    if note := views.metric_note(result, metric):
        st.info(note)
    st.plotly_chart(
        views.heatmap_figure(result, metric, height=classroom.plot_height(420)),
        **chart_selection("sw_heatmap", state.take_selection),
        selection_mode="points",
        config={"displaylogo": False},
    )
    st.caption(views.colour_note(result))
    verdict, separated = views.verdict(result, metric)
    if verdict:
        (st.success if separated else st.warning)(verdict, icon=":material/insights:")

    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    with c1:
        i, j = sv.cell_picker(state, result)
    c2.button(
        "Open in Playground",
        icon=":material/open_in_new:",
        key="sw_open",
        type="primary",
        on_click=state.request_open,
        width="stretch",
        help="start a new Playground run with this cell's settings (from step 0, with the first seed); "
        "the sweep keeps numbers and final points, not trained networks",
    )
    st.caption(f"{METRICS[metric][0]} of {rspec.cell_label(i, j)}: {views.seed_values(result, i, j, metric)}")

    st.markdown("##### Final particles (blue) over the data (grey)" + (", first seed" if len(rspec.seeds) > 1 else ""))
    for i in range(rspec.shape[0]):
        for j, col in enumerate(st.columns(rspec.shape[1])):
            png = views.thumbnail_png(result, i, j)
            if png is not None:
                col.image(png, width=240)
            col.caption(views.thumbnail_caption(result, i, j, metric))
    classroom.download_row(sweep_downloads(result, metric))
elif not running:
    st.info(views.empty_note(presenter), icon=":material/grid_on:")
