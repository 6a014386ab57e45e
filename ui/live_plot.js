// The in-place Plotly view of ui/live_plot.py (a Streamlit components v2 component).
let loading = null;

function loadPlotly(url) {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = new URL(url, window.location.origin).href;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => { loading = null; reject(new Error("could not load " + script.src)); };
      document.head.appendChild(script);
    });
  }
  return loading;
}

// One plot <div> per view name for the page's lifetime, held by the view's element. That element has a
// stable key, so Streamlit keeps it mounted from run to run and each new figure goes to Plotly.react on
// the same <div>, which redraws in place. A key may appear only once per script run, so the further
// frames of one run arrive through "feed" elements, which show nothing and hand their figure to the
// view. Sequence numbers keep an element that is re-rendered with older data from drawing it.
const views = window.__driftLiveViews || (window.__driftLiveViews = new Map());

// Colours that follow the app's theme: ui/figures.py writes these tokens, this replaces them.
function resolveTheme(value, colours) {
  if (typeof value === "string") return colours[value] || value;
  if (Array.isArray(value)) return value.map((v) => resolveTheme(v, colours));
  if (value && typeof value === "object" && !ArrayBuffer.isView(value) && !value.bdata) {
    for (const key of Object.keys(value)) value[key] = resolveTheme(value[key], colours);
  }
  return value;
}

// The text colour (hex or rgb()) at a given opacity, as rgba() (Plotly does not read color-mix()).
function faint(colour, alpha) {
  let rgb = (colour.match(/[\d.]+/g) || []).slice(0, 3).map(Number);
  if (colour.startsWith("#")) {
    const hex = colour.length === 4 ? colour.slice(1).split("").map((c) => c + c).join("") : colour.slice(1, 7);
    rgb = [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16));
  }
  return rgb.length === 3 ? "rgba(" + rgb.join(",") + "," + alpha + ")" : "rgba(128,128,128," + alpha + ")";
}

// A click on the plot area sends its data coordinates to Python (the Inspector picks the particle
// nearest to it).
function bindClicks(div) {
  if (div.__clickBound) return;
  div.__clickBound = true;
  div.addEventListener("click", (event) => {
    const fl = div._fullLayout;
    if (!div.__clicks || !div.__setTrigger || !fl || !fl.xaxis || !fl.yaxis) return;
    const box = div.getBoundingClientRect();
    const px = event.clientX - box.left - fl.xaxis._offset, py = event.clientY - box.top - fl.yaxis._offset;
    if (px < 0 || py < 0 || px > fl.xaxis._length || py > fl.yaxis._length) return;
    div.__setTrigger("click", {x: fl.xaxis.p2l(px), y: fl.yaxis.p2l(py), at: Date.now()});
  });
}

export default function (component) {
  const { data, parentElement } = component;
  let div = views.get(data.view);
  if (!data.feed) {
    if (!div) {
      div = document.createElement("div");
      div.className = "drift-live-plot";
      div.dataset.view = data.view;
      div.style.width = "100%";
      views.set(data.view, div);
    }
    if (div.parentNode !== parentElement) parentElement.appendChild(div);  // (re)mounted: take the view along
    div.__setTrigger = component.setTriggerValue;
    div.__clicks = !!data.clicks;
    bindClicks(div);
  } else if (!div || !div.isConnected) {
    return;  // no view on the page to feed
  }
  if (div.__seq !== undefined && data.seq <= div.__seq) return;
  div.__seq = data.seq;
  loadPlotly(data.plotly_url).then((Plotly) => {
    if (div.__seq !== data.seq) return;  // a newer frame arrived meanwhile: that one is drawn instead
    const figure = JSON.parse(data.figure);
    // follow the app's theme (light or dark): its text colour and font on a transparent paper, and
    // the figure's theme tokens in the text colour (faint for the grid)
    const style = getComputedStyle(div);
    const text = style.getPropertyValue("--st-text-color").trim() || "#31333F";
    const font = style.getPropertyValue("--st-font").trim();
    const grid = faint(text, 0.14);
    resolveTheme(figure, {"theme:text": text, "theme:grid": grid});
    const layout = figure.layout;
    if (layout.paper_bgcolor === undefined) layout.paper_bgcolor = "rgba(0,0,0,0)";
    layout.font = Object.assign({color: text}, font ? {family: font} : {}, layout.font || {});
    const start = performance.now();
    return Plotly.react(div, figure.data, layout, data.config).then(() => {
      // paint times per view, for the frame-budget benchmark (benchmarks/app_redraw.py)
      const paints = window.__driftPaints || (window.__driftPaints = {});
      (paints[data.view] || (paints[data.view] = [])).push(performance.now() - start);
      if (paints[data.view].length > 500) paints[data.view].shift();
    });
  }).catch((err) => {
    div.textContent = "The view could not start Plotly.js (" + err.message + ").";
  });
}
