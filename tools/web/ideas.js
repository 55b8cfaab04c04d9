// Miles web page: the "Get ideas" section (POST /ideas, docs/serving.md "Ideas").
// Uses $, el, fmt, pct, scoreCell, api, shade, signed from app.js.
"use strict";
const sig2 = (a) => (a >= 0 ? "+" : "−") + Math.abs(a).toPrecision(2);

function showIdeas(d) {
  $("ideas-result").hidden = false;
  // LLM ideas (only when the server has --llm-endpoint)
  const llm = d.ideas || [];
  $("i-llm").hidden = llm.length === 0;
  $("i-llm-list").replaceChildren(...llm.map((i) =>
    el("li", {}, el("b", {}, i.title), ` — ${pct(i.viral_score)} viral`, el("br"), el("span", { class: "muted" }, i.reasoning))));
  $("i-llm-error").hidden = !d.llm_error;
  $("i-llm-error").textContent = d.llm_error ? "LLM ideas unavailable: " + d.llm_error : "";
  // model-scored suggestions
  const s = d.suggestions;
  $("i-draft-line").textContent = `(${s.draft_source} “${s.draft}”: ${pct(s.draft_score)}; ${s.scored} variants scored)`;
  const rows = s.items.map((i) => el("tr", {}, el("td", { class: "title", title: i.title }, i.title), scoreCell(i.viral_score),
    el("td", { class: "yes" }, "+" + fmt(100 * i.delta, 1) + " pts"), el("td", { class: "small-note" }, i.reason)));
  if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: "4", class: "muted" }, "no edit scored higher than the draft")));
  $("i-sugg").tBodies[0].replaceChildren(...rows);
  // top candidates and the original's patterns
  $("i-matched").textContent = `(${d.matched} of ${d.records} candidates match “${d.topic}”)`;
  $("i-top").tBodies[0].replaceChildren(...d.top_candidates.map((c, k) => el("tr", {}, el("td", {}, k + 1),
    el("td", { class: "title", title: c.title }, c.title), scoreCell(c.viral_score),
    el("td", {}, c.view_count === undefined ? "—" : Math.round(c.view_count).toLocaleString()))));
  const p = d.patterns;
  $("i-n").textContent = p.n;
  const facts = [["Average title length", p.avg_title_length === null ? "—" : fmt(p.avg_title_length, 1) + " characters"],
    ["Average duration", p.avg_duration === null ? "—" : fmt(p.avg_duration, 1) + " s"],
    ["Average score", p.avg_score === null ? "—" : pct(p.avg_score)],
    ["Top words", p.top_words.map((w) => `${w.word} (${w.count})`).join(", ") || "—"]];
  const a = d.attributions;
  if (a.features.length) facts.push(["Features that matter most", a.features.slice(0, 4).map((f) => `${f.name} ${sig2(f.attribution)}`).join(", ")]);
  $("i-patterns").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  const words = [...a.words_up, ...a.words_down];
  const max = Math.max(0, ...words.map((w) => Math.abs(w.attribution)));
  $("i-words").replaceChildren(...words.map((w) => el("span", { style: `background:${shade(w.attribution, max)}`,
    title: `mean attribution ${sig2(w.attribution)} over ${w.count}` }, w.word)));
}

$("ideas-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = { topic: $("i-topic").value.trim(), vibe: $("i-vibe").value || null };
  const draft = $("i-draft").value.trim();
  if (draft) body.draft = draft;
  $("ideas-status").textContent = "thinking…";
  $("ideas-status").classList.remove("error");
  $("ideas-btn").disabled = true;
  try {
    const d = await api("/ideas", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    showIdeas(d);
    $("ideas-status").textContent = `${d.matched} matches, ${d.suggestions.items.length} suggestions` +
      (d.ideas ? `, ${d.ideas.length} LLM ideas` : "");
  } catch (e) {
    $("ideas-status").textContent = e.message;
    $("ideas-status").classList.add("error");
  } finally {
    $("ideas-btn").disabled = false;
  }
});
