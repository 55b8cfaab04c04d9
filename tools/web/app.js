// Miles web page: talks to the miles-serve API on the same origin.
"use strict";

const $ = (id) => document.getElementById(id);
const fmt = (x, d = 3) => (x === null || x === undefined || Number.isNaN(x)) ? "—" : Number(x).toFixed(d);
const pct = (x) => fmt(100 * x, 1) + "%";
let threshold = 0.5;

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k === "style") e.style.cssText = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

function scoreCell(score) {
  const bar = el("span", { class: "mini" }, el("i", { style: `width:${Math.round(100 * score)}%` }));
  return el("td", {}, bar, pct(score));
}

// Bearer token (miles-serve --token-file): open the page as /#token=SECRET once;
// it is kept in this browser's localStorage and sent with every API call.
const tokenMatch = location.hash.match(/token=([^&]+)/);
if (tokenMatch) {
  localStorage.setItem("miles_token", decodeURIComponent(tokenMatch[1]));
  history.replaceState(null, "", location.pathname + location.search);
}

async function api(path, opts = {}) {
  const token = localStorage.getItem("miles_token");
  if (token) opts.headers = Object.assign({}, opts.headers, { Authorization: `Bearer ${token}` });
  const r = await fetch(path, opts);
  let body = null;
  try { body = await r.json(); } catch (e) { body = { error: `HTTP ${r.status}` }; }
  if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
  return body;
}

async function loadInfo() {
  try {
    const i = await api("/model/info");
    // a calibrated model's scores are recalibrated: its threshold on that scale
    threshold = i.calibration ? i.calibration.decision_threshold_calibrated : i.decision_threshold;
    // how its training rows were split: a row split's test AUROC mixes old and new videos, a time split's does not
    const by = i.data_split && i.data_split.by;
    const split = ["row", "creator", "time"].includes(by) ? ` · trained on a split by ${by}` : "";
    $("model-line").textContent =
      `model ${i.model_version} · ${i.preset} preset · ${(i.parameters / 1e6).toFixed(2)}M parameters · ` +
      `${i.encoder.num_hidden_layers} layers, H ${i.encoder.hidden_size} · decision threshold ${fmt(threshold, 4)}` +
      split;
    markUnusedInputs(i.features);
    // a model that learned the creator's mean over earlier videos only wants that number (docs/serving.md)
    $("f-creator-rule").textContent = i.creator_avg_views === "prior" ? " (of earlier videos)" : "";
  } catch (e) {
    $("model-line").textContent = "model not available: " + e.message;
    $("model-line").classList.add("error");
  }
}

// A form field the model cannot use (every feature it feeds was dropped, or absent from every
// training row: a model trained for before publishing) is disabled and says so. The feature
// indices each field feeds, given alone or with the others (docs/data.md, the 18 features).
const INPUT_FEATURES = {
  "f-views": [0, 5, 7, 8, 9, 10],   // views and every per-view rate
  "f-likes": [1, 5, 7],             // likes, engagement_rate, like_rate
  "f-comments": [2, 5, 8],          // comments, engagement_rate, comment_ratio
  "f-duration": [13, 6],            // duration_sec, completion_rate
  "f-published": [11, 12, 17],      // upload_hour, is_weekend, publish_dayofweek
  "f-creator": [16],                // creator_avg_views
};
function markUnusedInputs(features) {
  if (!Array.isArray(features)) return;
  const used = (k) => features[k] && features[k].available_in_training && !features[k].dropped;
  for (const [id, ks] of Object.entries(INPUT_FEATURES)) {
    const el = $(id);
    const unused = !ks.some(used);
    el.disabled = unused;
    el.title = unused ? "not used by this model (its features were dropped or never seen in training)" : "";
    const label = el.parentElement;
    let note = label.querySelector(".unused");
    if (unused && !note) {
      note = document.createElement("span");
      note.className = "muted unused";
      note.textContent = " (not used by this model)";
      label.insertBefore(note, el);
    } else if (!unused && note) {
      note.remove();
    }
  }
}

// Integrated-gradients attributions (docs/explain.md): words shaded by their
// contribution to P(viral) (orange = towards viral, teal = away), then the
// given features by |contribution|.
function shade(a, max) {
  const t = max > 0 ? Math.min(1, Math.abs(a) / max) : 0;
  return a >= 0 ? `rgba(228,87,46,${0.08 + 0.6 * t})` : `rgba(42,157,143,${0.08 + 0.6 * t})`;
}
const signed = (a) => (a >= 0 ? "+" : "−") + fmt(Math.abs(a), 3);

function showExplanation(r) {
  const box = $("r-explain");
  const x = r.explanation;
  if (!x) {
    box.hidden = !r.explanation_error;
    if (r.explanation_error) $("r-explain-note").textContent = "no explanation: " + r.explanation_error;
    $("r-words").replaceChildren();
    $("r-feat-table").tBodies[0].replaceChildren();
    return;
  }
  const feats = x.features.filter((f) => !f.filled);
  const max = Math.max(1e-12, ...x.words.map((w) => Math.abs(w.attribution)), ...feats.map((f) => Math.abs(f.attribution)));
  $("r-words").replaceChildren(...x.words.map((w) =>
    el("span", { style: `background:${shade(w.attribution, max)}`, title: signed(w.attribution) }, w.word)));
  feats.sort((a, b) => Math.abs(b.attribution) - Math.abs(a.attribution));
  $("r-feat-table").tBodies[0].replaceChildren(...feats.map((f) => el("tr", {},
    el("td", {}, f.name),
    el("td", {}, el("span", { class: "hbar", style: `width:${Math.round(120 * Math.abs(f.attribution) / max)}px;background:${shade(f.attribution, max)}` })),
    el("td", {}, signed(f.attribution)))));
  const unit = x.target === "p_viral" ? "P(viral)" : x.target;
  $("r-explain-note").textContent =
    `Contributions to ${unit}, integrated gradients (${x.steps} steps). They add up to ${fmt(x.f_input, 3)} − ${fmt(x.f_baseline, 3)} ` +
    `(the score of the same title made of [PAD] tokens with average numbers) up to ${fmt(Math.abs(x.completeness_error), 4)}. ` +
    `Features filled with the training mean contribute 0.`;
  box.hidden = false;
}

$("predict-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = { title: $("f-title").value };
  if ($("f-description").value) body.description = $("f-description").value;
  for (const [id, key] of [["f-views", "view_count"], ["f-likes", "like_count"], ["f-comments", "comment_count"],
                           ["f-duration", "duration_seconds"], ["f-creator", "creator_avg_views"]]) {
    const v = $(id).value.trim();
    if (v !== "") body[key] = Number(v);
  }
  // "YYYY-MM-DDTHH:MM" as written (no time-zone shift): upload hour, weekday, weekend
  if ($("f-published").value) body.upload_date = $("f-published").value;
  $("predict-status").textContent = "scoring…";
  $("predict-status").classList.remove("error");
  try {
    const path = $("f-explain").checked ? "/predict?explain=1" : "/predict";
    const r = await api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    $("predict-status").textContent = "";
    $("r-score").textContent = pct(r.viral_score);
    $("r-badge").textContent = r.is_viral ? "viral" : "not viral";
    $("r-badge").className = "badge" + (r.is_viral ? " viral" : "");
    $("r-bar").style.width = `${100 * r.viral_score}%`;
    const thr = r.decision_threshold_calibrated ?? r.decision_threshold;   // on viral_score's scale
    $("r-thr").style.left = `${100 * thr}%`;
    $("r-thr-text").textContent = pct(thr);
    $("r-velocity").textContent = fmt(r.predicted_velocity, 1) + " views/day";
    $("r-confidence").textContent = fmt(r.confidence, 2);
    $("r-time").textContent = fmt(r.processing_time_ms, 1) + " ms";
    $("r-supplied").textContent = r.features.supplied.join(", ") || "none";
    $("r-derived").textContent = r.features.derived.join(", ") || "none";
    $("r-filled").textContent = r.features.filled.join(", ") || "none";
    showExplanation(r);
    $("predict-result").hidden = false;
    loadHistory();
  } catch (e) {
    $("predict-status").textContent = e.message;
    $("predict-status").classList.add("error");
  }
});

$("file-input").addEventListener("change", async () => {
  const f = $("file-input").files[0];
  if (!f) return;
  $("file-status").textContent = `scoring ${f.name}…`;
  $("file-status").classList.remove("error");
  const text = await f.text();
  const json = /^\s*[\[{]/.test(text);
  try {
    const r = await api("/predict/file", { method: "POST", headers: { "Content-Type": json ? "application/x-ndjson" : "text/csv" }, body: text });
    const rows = r.results.slice().sort((a, b) => b.viral_score - a.viral_score);
    const tb = $("file-table").querySelector("tbody");
    tb.replaceChildren(...rows.map((x, i) => el("tr", {},
      el("td", {}, i + 1), el("td", { class: "title", title: x.title }, x.title), scoreCell(x.viral_score),
      el("td", { class: x.is_viral ? "yes" : "" }, x.is_viral ? "yes" : "no"),
      el("td", {}, fmt(x.predicted_velocity, 1)), el("td", {}, fmt(x.confidence, 2)))));
    $("file-table").hidden = false;
    const viral = rows.filter((x) => x.is_viral).length;
    $("file-status").textContent = `${rows.length} videos scored in ${fmt(r.processing_time_ms, 0)} ms; ${viral} predicted viral`;
    loadHistory();
  } catch (e) {
    $("file-status").textContent = e.message;
    $("file-status").classList.add("error");
  }
});

async function loadHistory() {
  const kind = $("history-kind").value;
  const tb = $("history-table").querySelector("tbody");
  $("history-table").querySelector("thead th:last-child").textContent = kind === "history" ? "Source" : "Platform";
  try {
    const r = await api(`/${kind}?limit=50`);
    const list = r[kind];
    tb.replaceChildren(...list.map((x) => el("tr", {},
      el("td", {}, (x.created_at || x.scored_at || "").replace("T", " ").slice(0, 19)),
      el("td", { class: "title", title: x.title }, x.title),
      scoreCell(kind === "history" ? x.viral_score : x.miles_score),
      el("td", { class: x.is_viral ? "yes" : "" }, x.is_viral ? "yes" : "no"),
      el("td", {}, fmt(x.predicted_velocity, 1)),
      el("td", {}, kind === "history" ? x.source : (x.platform || "")))));
  } catch (e) {
    tb.replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "error" }, e.message)));
  }
}

$("history-refresh").addEventListener("click", loadHistory);
$("history-kind").addEventListener("change", loadHistory);
loadInfo();
loadHistory();
