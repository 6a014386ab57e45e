"""Home: what drifting and lookahead drifting are, one picture, and where to go."""

from ui.navigation_fix import ensure_navigation

ensure_navigation()  # first: a deep link on a fresh server runs this page alone (see ui.navigation_fix)

import streamlit as st

from drift_views.home import drift_picture
from ui.live_plot import LiveView

st.title("Drift Lab")
st.markdown(
    "**See and feel how drifting models learn.** A *drifting model* (Deng et al., 2026) trains a one-step "
    "generator x = f(ε). At every step each generated point x is pushed along a **drifting field** "
    "V = V⁺ − V⁻: attraction towards real data (V⁺) minus repulsion from the other generated points (V⁻), "
    "both weighted by the kernel exp(−‖x − y‖/τ). The network is then regressed onto the moved points: "
    "loss ‖x − stopgrad(x + V)‖². When the generated distribution matches the data, attraction and "
    "repulsion cancel and V = 0."
)
st.markdown(
    "**Lookahead drifting** (Zhang, Niwa, Kleijn) computes K further drifting terms within the same step, "
    "each on the points already moved by the terms before it (z⁰ = x, zᵏ⁺¹ = zᵏ + Vₖ), and trains on "
    "their sum, so one step sees where the flow is going. K = 0 is the baseline. *(Drift Lab implements a "
    "documented reconstruction: the paper's full text was not available.)*"
)
left, right = st.columns([3, 2])
with left:
    LiveView("home_picture").draw(drift_picture(), config={"staticPlot": True})
with right:
    st.markdown("#### Where to go")
    st.page_link(
        "pages/playground.py", label="Playground — train live, change K and τ while it runs", icon=":material/tune:"
    )
    st.page_link("pages/compare.py", label="Compare — baseline vs lookahead in lock-step", icon=":material/compare:")
    st.page_link("pages/inspector.py", label="Inspector — one training step in slow motion", icon=":material/biotech:")
    st.page_link("pages/sweep.py", label="Sweep — a grid of runs over two settings", icon=":material/grid_on:")
    st.page_link(
        "pages/cifar10.py",
        label="Images — baseline vs lookahead on images (CIFAR10 or an offline demo set)",
        icon=":material/image:",
    )
    st.markdown(
        "- Controls marked **:material/bolt: Applies live** change the running trainer; **:material/restart_alt: Restart** controls (data, "
        "start, network, seed) begin a new run.\n"
        "- The whole configuration and seed are in the page's URL: copy it to share exactly this setup.\n"
        "- Try the paper's start cases: *Between*, *Far away*, *Collapsed* (bimodal data)."
    )

st.markdown("#### What each view teaches")
st.markdown(
    "- **The field without the network** (Playground: *Beside it*, or *What moves the points: particles*): the same "
    "points moved by z ← z + η·V alone, on the same batches. It shows the flow the network is trained to follow, "
    "and what the one-step generator adds: one function that also works for fresh noise.\n"
    "- **Is lookahead only a larger step?** (Compare with the fairness arm, in network or particle mode): lookahead "
    "beside a baseline with twice the learning rate (or twice the particle step). If the two track each other, "
    "the gain is a larger effective step; the sentence under the pictures says which arm leads and by how much.\n"
    "- **Dimensions** (sidebar *Dimensions D*, and *Dimensions: how the kernel flattens*): the 2D data hidden in D "
    "dimensions. As D grows every particle's attraction averages over more and more data points, which is why "
    "images are drifted in an encoder's feature space.\n"
    "- **Kernels** (*More drift settings*): the paper's Laplace kernel, a Gaussian one, attraction only and the "
    "official affinity floor. The Gaussian tail vanishes far from the data and attraction alone collapses the "
    "particles: each option shows what one part of the field does.\n"
    "- **Predict, then reveal** (Playground): guess where a particle goes, then train and see. It makes the "
    "difference between the drift V and the network's actual step visible.\n"
    "- **The image feature space in 2D** (Images): generated and real features of one feature group on the real "
    "features' principal plane, with their drift arrows. The picture a class knows from the 2D toys, where image "
    "drifting really happens."
)
