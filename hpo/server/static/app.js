"use strict";
// The hpo dashboard: two views over the JSON API, no build step.
//   #/             the studies
//   #/study/NAME   one study: plots, trials table, compare view
// Live updates: the page polls /api/studies/NAME/trials with If-None-Match; an unchanged study
// costs a bodiless 304, a changed one redraws. The charts are plotly figures made by the
// server (hpo.plots, the same code as `hpo plot`); the page only draws them.

const PLOT_KINDS = ["history", "parallel", "importance", "slices", "curves"];
// What the optimiser thinks (issue 19): GET /api/studies/NAME/optimizer; the server picks the
// views that fit the study's strategy and says which in `kinds`.
const OPT_KINDS = ["surrogate", "acquisition", "contour", "tpe", "coverage", "learning", "edf", "timeline"];
const PLOTLY_CONFIG = { responsive: true, displaylogo: false };

const app = {
  pollMs: 2000,
  timer: null,
  view: null,        // "studies" | "study"
  study: null,       // the open study's name
  detail: null,      // GET /api/studies/NAME
  trials: [],        // GET /api/studies/NAME/trials
  etag: null,
  selected: new Set(),
  sort: { key: "number", dir: 1 },
  comparing: false,
  shown: 0,          // trials the table shows (after the filters)
  rows: [],          // those trials, filtered and sorted; only the ones in view are in the DOM
  rowH: 0,           // a row's height in pixels (measured)
  window: [-1, -1],  // the rows [first, last) in the DOM
  menus: {},         // plot id -> {menu index: button index}: the user's dropdown choices
  history: { log: false, states: "all" },  // the history chart's options
  token: sessionStorage.getItem("hpo-token"),  // for servers started with --token-reads
  opt: { x: null, y: null, etag: null },  // the optimiser view: contour params, last drawn
  detailTrial: null,  // the trial shown in the detail panel
};

// Rows drawn beyond the visible ones, above and below (so that a quick scroll shows rows).
const OVERSCAN = 20;

// -- helpers -------------------------------------------------------------------------------
const $ = (sel) => document.querySelector(sel);
const enc = encodeURIComponent;

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  }[c]));
}

function num(v) {
  if (v === null || v === undefined) return "–";
  if (typeof v !== "number") return String(v);
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 1e-3 && Math.abs(v) < 1e5 ? v.toPrecision(5).replace(/\.?0+$/, "") : v.toExponential(3);
}

function duration(s) {
  if (s === null || s === undefined) return "–";
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "–";
}

function status(text, isError = false) {
  const el = $("#status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

function authHeaders(headers = {}) {
  return app.token ? { ...headers, Authorization: `Bearer ${app.token}` } : headers;
}

async function getJSON(url) {
  const res = await fetch(url, { cache: "no-store", headers: authHeaders() });
  if (res.status === 401) askToken();
  if (!res.ok) throw new Error(await errorText(res));
  return res.json();
}

// A server started with --token-reads answers reads with 401 until the page sends its token.
function askToken() {
  $("#token-form").hidden = false;
  $("#token").focus();
}

async function errorText(res) {
  try { return (await res.json()).detail; } catch { return `${res.status} ${res.statusText}`; }
}

function schedule(fn) {
  clearTimeout(app.timer);
  app.timer = setTimeout(fn, app.pollMs);
}

// Clicking a point of these charts selects its trial (customdata, else x, is its number).
const CLICKABLE = new Set(["plot-history", "plot-slices"]);

// plotly.js is plotly's "basic" bundle (scatter and bar: all hpo draws), vendored next to
// this file with its licence: 1.2 MB instead of the full 4.8 MB bundle, so it compiles in a
// fraction of the time, and no network is needed. start() loads it once the first API
// requests are out, so the server answers them while the browser compiles it.
let plotlyLoaded;
const plotlyReady = new Promise((resolve) => { plotlyLoaded = resolve; });

function loadPlotly() {
  if (window.Plotly) return plotlyLoaded();
  const script = document.createElement("script");
  script.src = "static/plotly-basic.min.js";
  script.onload = () => {
    performance.mark("hpo:plotly");  // plotly.js loaded and run
    plotlyLoaded();
  };
  script.onerror = () => status(`cannot load ${script.src}: the charts cannot be drawn`, true);
  document.body.appendChild(script);
}

// Apply what the user chose in a figure's dropdowns (plotly_buttonclicked) to its redraw.
function keepMenus(id, fig) {
  const chosen = app.menus[id];
  const menus = fig.layout.updatemenus;
  if (!chosen || !menus) return;
  for (const [m, b] of Object.entries(chosen)) {
    const button = menus[m]?.buttons?.[b];
    if (!button || button.method !== "update") continue;
    menus[m].active = Number(b);
    const [restyle, relayout] = button.args;
    for (const [key, values] of Object.entries(restyle ?? {})) {
      fig.data.forEach((tr, i) => { tr[key] = Array.isArray(values) ? values[i] : values; });
    }
    for (const [path, value] of Object.entries(relayout ?? {})) {
      const keys = path.split(".");
      let obj = fig.layout;
      for (const k of keys.slice(0, -1)) obj = obj[k] ??= {};
      obj[keys.at(-1)] = value;
    }
  }
}

// The history chart's own options: log scale, and which states it shows.
function historyOptions(fig) {
  if (app.history.log) {
    fig.layout.yaxis = { ...fig.layout.yaxis, type: "log" };
  }
  if (app.history.states === "complete") {
    fig.data = fig.data.filter((tr) => !String(tr.name ?? "").startsWith("pruned"));
  }
}

async function draw(id, fig) {
  await plotlyReady;
  const div = document.getElementById(id);
  if (!div) return;
  keepMenus(id, fig);
  if (id === "plot-history") historyOptions(fig);
  // The same uirevision on every redraw keeps what the user did (zoom, legend) as it was.
  fig.layout.uirevision = `${app.study}:${id}:${id === "plot-history" ? app.history.log : ""}`;
  // A figure that sets its height (the slices grid grows with the parameters) gets it: with
  // `responsive` plotly would otherwise squeeze it into the box's current height.
  div.style.height = fig.layout.height ? `${fig.layout.height}px` : "";
  await Plotly.react(div, fig.data, fig.layout, PLOTLY_CONFIG);
  if (!div.dataset.wired) {
    div.dataset.wired = "1";
    div.on("plotly_buttonclicked", (e) => {
      (app.menus[id] ??= {})[e.menu._index] = e.active;
    });
    if (CLICKABLE.has(id)) {
      div.on("plotly_click", (e) => {
        const p = e.points[0];
        const n = p.customdata ?? p.x;
        if (Number.isInteger(n)) toggle(n);
      });
    }
  }
}

// -- routing -------------------------------------------------------------------------------
function route() {
  clearTimeout(app.timer);
  const m = location.hash.match(/^#\/study\/(.+)$/);
  $("#studies-view").hidden = !!m;
  $("#study-view").hidden = !m;
  delete document.body.dataset.rendered;
  if (m) openStudy(decodeURIComponent(m[1]));
  else openStudies();
}

// -- the studies ---------------------------------------------------------------------------
function openStudies() {
  app.view = "studies";
  $("#crumb").textContent = "";
  document.title = "hpo · studies";
  refreshStudies();
}

function statesText(states) {
  return ["complete", "pruned", "failed", "running"]
    .filter((s) => states[s])
    .map((s) => `<span class="badge ${s}">${states[s]} ${s}</span>`)
    .join(" ");
}

async function refreshStudies() {
  if (app.view !== "studies") return;
  try {
    const studies = await getJSON("api/studies");
    $("#studies tbody").innerHTML = studies.map((s) => `
      <tr data-name="${esc(s.name)}">
        <td><a href="#/study/${esc(enc(s.name))}">${esc(s.name)}</a></td>
        <td>${esc(s.space_name ?? "custom")}</td><td>${esc(s.strategy)}</td><td>${esc(s.direction)}</td>
        <td>${s.n_trials} ${statesText(s.states)}</td>
        <td class="num">${num(s.best_value)}</td>
        <td>${when(s.created_at)}</td><td>${duration(s.elapsed_s)}</td>
      </tr>`).join("");
    $("#no-studies").hidden = studies.length > 0;
    status(`${studies.length} studies · updated ${new Date().toLocaleTimeString()}`);
    document.body.dataset.rendered = "studies";
  } catch (e) {
    status(`cannot read the studies: ${e.message}; retrying`, true);
  }
  schedule(refreshStudies);
}

// -- one study -----------------------------------------------------------------------------
function openStudy(name) {
  Object.assign(app, { view: "study", study: name, etag: null, trials: [], comparing: false });
  app.selected.clear();
  $("#compare").hidden = true;
  $("#crumb").innerHTML = `/ ${esc(name)}`;
  $("#study-title").textContent = name;
  document.title = `hpo · ${name}`;
  app.menus = {};
  app.window = [-1, -1];
  for (const k of [...PLOT_KINDS, "compare"]) {
    if (window.Plotly) Plotly.purge(`plot-${k}`);
    delete document.getElementById(`plot-${k}`).dataset.wired;
  }
  app.opt = { x: null, y: null, etag: null };
  for (const k of OPT_KINDS) {
    const div = document.getElementById(`opt-${k}`);
    if (window.Plotly) Plotly.purge(div);
    delete div.dataset.wired;
    div.hidden = true;
  }
  $("#opt-hint").hidden = true;
  $("#study-note").value = "";
  delete $("#study-note").dataset.dirty;
  $("#compare-studies-table").innerHTML = "";
  closeTrial();
  fillOtherStudies(name);
  refreshStudy();
}

// "?highlight_ranges=1,4,7-9" for the selected trials (ranges: a compare of hundreds still
// fits in a URL), then `extra` ("&a=b&c=d").
function highlightQuery(extra = "") {
  const numbers = [...app.selected].sort((a, b) => a - b);
  const parts = [];
  for (let i = 0; i < numbers.length; i++) {
    let j = i;
    while (j + 1 < numbers.length && numbers[j + 1] === numbers[j] + 1) j++;
    parts.push(j > i ? `${numbers[i]}-${numbers[j]}` : `${numbers[i]}`);
    i = j;
  }
  const q = (parts.length ? `highlight_ranges=${parts.join(",")}` : "") + extra;
  return q ? "?" + q.replace(/^&/, "") : "";
}

// The study and its plots, as promises. With `snapshot` (the trials list's ETag) they are
// built from the very read the table shows. Importance is the one plot that takes time (a
// forest is fitted): asked apart, so the others are drawn as soon as they come.
function studyExtras(name, snapshot) {
  const snap = snapshot ? `&snapshot=${enc(snapshot)}` : "";
  const quick = PLOT_KINDS.filter((k) => k !== "importance").map((k) => `&kind=${k}`).join("");
  return {
    detail: getJSON(`api/studies/${enc(name)}${snap.replace("&", "?")}`),
    figs: getJSON(`api/studies/${enc(name)}/plots${highlightQuery(snap + quick)}`),
    importance: getJSON(`api/studies/${enc(name)}/plots/importance${snap.replace("&", "?")}`),
  };
}

async function refreshStudy() {
  const name = app.study;
  if (app.view !== "study") return;
  try {
    const headers = authHeaders(app.etag ? { "If-None-Match": app.etag } : {});
    // attrs=false: the page shows no attributes, and they are most of a trial's weight
    const answer = await fetch(`api/studies/${enc(name)}/trials?attrs=false`, { cache: "no-store", headers });
    if (name !== app.study) return;  // the user moved on meanwhile
    if (answer.status !== 304) {
      if (answer.status === 401) askToken();
      if (!answer.ok) throw new Error(await errorText(answer));
      const etag = answer.headers.get("ETag");
      const extras = studyExtras(name, etag);  // out before the trials are even parsed
      const trials = await answer.json();
      for (const t of trials) {  // what the filter box searches, made once per read
        t.text = JSON.stringify([t.number, t.state, t.params, t.reason, t.device, t.resumed]).toLowerCase();
      }
      const [detail, figs] = await Promise.all([extras.detail, extras.figs]);
      if (name !== app.study) return;
      Object.assign(app, { trials, detail, etag });
      renderSummary();
      renderTable();
      const drawn = Promise.all(Object.keys(figs).map((k) => draw(`plot-${k}`, figs[k])));
      figs.importance = await extras.importance;
      await Promise.all([drawn, draw("plot-importance", figs.importance)]);
      const method = figs.importance.layout.meta?.method;
      $("#importance-method").textContent = method ? `Importance: ${method}.` : "";
      if (app.comparing) await renderCompare();
      performance.mark("hpo:drawn");  // every chart drawn (the benchmark reads this mark)
      document.body.dataset.rendered = etag;
      renderNote();
      refreshOptimizer(name, etag);  // not waited for: the page is usable meanwhile
    }
    status(`updated ${new Date().toLocaleTimeString()}`);
  } catch (e) {
    status(`${e.message}${e.message.endsWith(".") ? "" : "."} Retrying…`, true);
  }
  schedule(refreshStudy);
}

function renderSummary() {
  const d = app.detail;
  const best = d.best_trial
    ? `best ${num(d.best_value)} (trial ${d.best_trial.number})` : "no completed trial yet";
  $("#study-summary").innerHTML =
    `${esc(d.space_name ?? "custom space")} · ${esc(d.strategy)} · ${esc(d.direction)} · ` +
    `${d.n_trials} trials ${statesText(d.states)} · ${best} · started ${when(d.created_at)} · ` +
    `elapsed ${duration(d.elapsed_s)}` + finalText(d.evaluation);
}

// The final model (issue 16): test figures on the split the search never saw, labelled.
function finalText(ev) {
  if (!ev) return "";
  const pct = (v) => (typeof v === "number" ? `${(100 * v).toFixed(2)} %` : "–");
  return ` · <strong>final model</strong> (trial ${ev.trial}): test accuracy ${pct(ev.test_accuracy)}` +
    `, validation ${pct(ev.val_accuracy)} · test split: ${esc(ev.test_split ?? "?")}`;
}

// -- the trials table ----------------------------------------------------------------------
function paramNames() {
  return Object.keys(app.detail?.space ?? {});
}

function columns() {
  const cols = [
    { key: "number", label: "#", get: (t) => t.number, cls: "num", html: (t) => `<button type="button" class="trial-link" data-n="${t.number}" title="details of trial ${t.number}">${t.number}</button>` },
    { key: "state", label: "state", get: (t) => (t.paused ? "paused" : t.state), html: (t) => `<span class="badge ${t.state}">${t.paused ? "paused" : t.state}</span>${t.resumed ? ` <span class="resumed" title="${esc(t.resumed)}">↻</span>` : ""}` },
    { key: "value", label: "value", get: (t) => t.value, cls: "num", html: (t) => num(t.value) },
    { key: "duration_s", label: "duration", get: (t) => t.duration_s, cls: "num", html: (t) => duration(t.duration_s) },
    { key: "device", label: "device", get: (t) => t.device ?? "" },
  ];
  for (const p of paramNames()) {
    cols.push({ key: `p:${p}`, label: p, get: (t) => t.params[p], html: (t) => (p in t.params ? esc(num(t.params[p])) : "–"), cls: "num" });
  }
  cols.push({ key: "reason", label: "reason", get: (t) => t.reason ?? "", cls: "reason" });
  cols.push({
    key: "mlflow", label: "MLflow", get: (t) => t.mlflow_run_id ?? "",
    html: (t) => t.mlflow_url ? `<a href="${esc(t.mlflow_url)}" target="_blank" rel="noopener">run</a>`
      : t.mlflow_run_id ? `<span title="start the dashboard with --mlflow-ui URL to link runs">${esc(t.mlflow_run_id.slice(0, 8))}</span>` : "–",
  });
  return cols;
}

function compareValues(a, b) {
  const missing = (v) => v === null || v === undefined || v === "";
  if (missing(a) && missing(b)) return 0;
  if (missing(a)) return 1;   // blanks last, whatever the direction
  if (missing(b)) return -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

function visibleTrials(cols) {
  const text = $("#filter").value.trim().toLowerCase();
  const state = $("#state-filter").value;
  const col = cols.find((c) => c.key === app.sort.key) ?? cols[0];
  const blank = (v) => v === null || v === undefined || v === "";
  const rows = app.trials.filter((t) => (!state || t.state === state) && (!text || t.text.includes(text)));
  const keyed = rows.map((t) => [col.get(t), t]);  // each key read once, not per comparison
  keyed.sort(([a], [b]) => {
    const c = compareValues(a, b);
    return blank(a) || blank(b) ? c : c * app.sort.dir;
  });
  return keyed.map(([, t]) => t);
}

// The table is virtualised: only the rows in view (and OVERSCAN around them) are in the DOM,
// between two spacer rows that give the table its full height; scrolling swaps rows in.
// 1,200 trials draw, sort and filter in milliseconds instead of seconds (issue 17).
function renderTable() {
  const cols = columns();
  app.cols = cols;
  $("#trials thead").innerHTML = "<tr><th></th>" + cols.map((c) => {
    const sorted = c.key === app.sort.key ? ` sorted${app.sort.dir < 0 ? " desc" : ""}` : "";
    return `<th data-key="${esc(c.key)}" class="${sorted}">${esc(c.label)}</th>`;
  }).join("") + "</tr>";
  app.rows = visibleTrials(cols);
  app.shown = app.rows.length;
  app.window = [-1, -1];
  renderRows();
  renderCounts();
}

function rowHTML(t, cols) {
  const sel = app.selected.has(t.number);
  const cells = cols.map((c) => `<td class="${c.cls ?? ""}"${c.key === "reason" && t.reason ? ` title="${esc(t.reason)}"` : ""}>${c.html ? c.html(t) : esc(c.get(t))}</td>`).join("");
  return `<tr data-n="${t.number}" class="state-${t.state}${sel ? " selected" : ""}"><td><input type="checkbox" aria-label="select trial ${t.number}" ${sel ? "checked" : ""}></td>${cells}</tr>`;
}

function renderRows() {
  const body = $("#trials tbody");
  const n = app.rows.length;
  const h = app.rowH || 29;
  const top = body.getBoundingClientRect().top;  // of the rows, relative to the viewport
  // A window's worth of rows and the margins, from the first one in view (the first rows
  // while the table is still below the fold: charts above it may yet change their height).
  const count = Math.ceil(window.innerHeight / h) + 2 * OVERSCAN;
  const first = Math.max(0, Math.min(n - count, Math.floor(-top / h) - OVERSCAN));
  const last = Math.min(n, first + count);
  if (first === app.window[0] && last === app.window[1]) return;
  app.window = [first, last];
  const span = app.cols.length + 1;
  const pad = (rows) => (rows > 0 ? `<tr class="pad" aria-hidden="true"><td colspan="${span}" style="height:${rows * h}px"></td></tr>` : "");
  body.innerHTML = pad(first) + app.rows.slice(first, last).map((t) => rowHTML(t, app.cols)).join("") + pad(n - last);
  if (!app.rowH) {
    const row = body.querySelector("tr[data-n]");
    if (row && row.offsetHeight) {
      app.rowH = row.offsetHeight;
      app.window = [-1, -1];
      renderRows();  // again, with the real row height
    }
  }
}

function renderCounts() {
  $("#trial-count").textContent = `${app.shown} of ${app.trials.length} trials · ${app.selected.size} selected`;
  $("#compare-btn").disabled = app.selected.size < 2;
}

async function toggle(number) {
  const on = !app.selected.has(number);
  if (on) app.selected.add(number);
  else app.selected.delete(number);
  const row = document.querySelector(`#trials tbody tr[data-n="${number}"]`);
  if (row) {  // update in place: re-rendering 1,000 rows per click would lose the focus
    row.classList.toggle("selected", on);
    row.querySelector("input").checked = on;
  }
  renderCounts();
  await redrawHighlight();
}

async function redrawHighlight() {
  const name = app.study;
  const snap = app.etag ? `&snapshot=${enc(app.etag)}` : "";
  const fig = await getJSON(`api/studies/${enc(name)}/plots/curves${highlightQuery(snap)}`);
  if (name === app.study) await draw("plot-curves", fig);
  if (app.comparing) await renderCompare();
}

// -- compare -------------------------------------------------------------------------------
async function renderCompare() {
  const picked = app.trials.filter((t) => app.selected.has(t.number));
  if (picked.length < 2) {
    app.comparing = false;
    $("#compare").hidden = true;
    return;
  }
  $("#compare").hidden = false;
  $("#compare-count").textContent = `${picked.length} trials`;
  const rows = [
    ["state", (t) => t.state],
    ["value", (t) => num(t.value)],
    ["duration", (t) => duration(t.duration_s)],
    ["device", (t) => t.device ?? "–"],
    ...paramNames().map((p) => [p, (t) => (p in t.params ? num(t.params[p]) : "inactive")]),
    ["reason", (t) => t.reason ?? "–"],
  ];
  const head = `<tr><th></th>${picked.map((t) => `<th>trial ${t.number}</th>`).join("")}</tr>`;
  const body = rows.map(([label, get]) => {
    const vals = picked.map(get);
    const differ = new Set(vals.map(String)).size > 1;
    return `<tr class="${differ ? "diff" : ""}" data-row="${esc(label)}"><th>${esc(label)}</th>${vals.map((v) => `<td>${esc(v)}</td>`).join("")}</tr>`;
  }).join("");
  $("#compare-table").innerHTML = head + body;
  const name = app.study;
  const snap = app.etag ? `&snapshot=${enc(app.etag)}` : "";
  const fig = await getJSON(`api/studies/${enc(name)}/plots/curves${highlightQuery(`&only_highlighted=true${snap}`)}`);
  if (name === app.study) await draw("plot-compare", fig);
}

// -- events --------------------------------------------------------------------------------
function wire() {
  $("#trials thead").addEventListener("click", (e) => {
    const key = e.target.closest("th")?.dataset.key;
    if (!key) return;
    app.sort = { key, dir: app.sort.key === key ? -app.sort.dir : 1 };
    renderTable();
  });
  $("#trials tbody").addEventListener("click", (e) => {
    const link = e.target.closest("button.trial-link");
    if (!link) return;
    e.preventDefault();
    openTrial(Number(link.dataset.n));
  });
  $("#trial-detail-close").addEventListener("click", closeTrial);
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") closeTrial(); });
  $("#trial-note-save").addEventListener("click", saveTrialNote);
  $("#study-note-save").addEventListener("click", saveStudyNote);
  $("#study-note").addEventListener("input", () => { $("#study-note").dataset.dirty = "1"; });
  $("#opt-x").addEventListener("change", redrawContour);
  $("#opt-y").addEventListener("change", redrawContour);
  $("#other-study").addEventListener("change", compareStudies);
  $("#trials tbody").addEventListener("change", (e) => {
    const row = e.target.closest("tr");
    if (row) toggle(Number(row.dataset.n));
  });
  $("#filter").addEventListener("input", renderTable);
  $("#state-filter").addEventListener("change", renderTable);
  let pending = false;
  const onScroll = () => {
    if (pending || app.view !== "study") return;
    pending = true;
    requestAnimationFrame(() => { pending = false; renderRows(); });
  };
  window.addEventListener("scroll", onScroll, { passive: true });
  window.addEventListener("resize", onScroll);
  $("#history-log").addEventListener("change", (e) => {
    app.history.log = e.target.checked;
    redrawHistory();
  });
  $("#history-states").addEventListener("change", (e) => {
    app.history.states = e.target.value;
    redrawHistory();
  });
  $("#token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    app.token = $("#token").value;
    sessionStorage.setItem("hpo-token", app.token);
    $("#token-form").hidden = true;
    app.etag = null;
    route();
  });
  $("#compare-btn").addEventListener("click", async () => {
    app.comparing = true;
    await renderCompare();
    $("#compare").scrollIntoView({ behavior: "smooth" });
  });
  $("#clear-btn").addEventListener("click", async () => {
    app.selected.clear();
    renderTable();
    await redrawHighlight();
  });
  window.addEventListener("hashchange", route);
}

async function redrawHistory() {
  const name = app.study;
  const snap = app.etag ? `?snapshot=${enc(app.etag)}` : "";
  const fig = await getJSON(`api/studies/${enc(name)}/plots/history${snap}`);
  if (name === app.study) await draw("plot-history", fig);
}

// -- what the optimiser thinks -----------------------------------------------------------
function optQuery(extra = "") {
  const q = [];
  if (app.opt.x) q.push(`x=${enc(app.opt.x)}`);
  if (app.opt.y) q.push(`y=${enc(app.opt.y)}`);
  return q.concat(extra ? [extra] : []).join("&");
}

async function drawOptimizer(kind, fig) {
  const id = `opt-${kind}`;
  const div = document.getElementById(id);
  div.hidden = false;
  await draw(id, fig);
  if (!div.dataset.optWired) {
    div.dataset.optWired = "1";
    // A trial's point opens its details (customdata is its number).
    div.on("plotly_click", (e) => {
      const n = e.points[0]?.customdata;
      if (Number.isInteger(n)) openTrial(n);
    });
  }
}

async function refreshOptimizer(name, etag) {
  try {
    const t0 = performance.now();
    const snap = etag ? `snapshot=${enc(etag)}` : "";
    const body = await getJSON(`api/studies/${enc(name)}/optimizer?${optQuery(snap)}`);
    if (name !== app.study) return;
    const got = new Set(body.kinds);
    for (const k of OPT_KINDS) {
      if (!got.has(k)) document.getElementById(`opt-${k}`).hidden = true;
    }
    // One after the other, in the page's order, each marked when drawn (hpo:opt:KIND; the
    // benchmark reads them): the surrogate first.
    for (const k of OPT_KINDS.filter((k) => got.has(k))) {
      await drawOptimizer(k, body.figures[k]);
      if (name !== app.study) return;
      performance.mark(`hpo:opt:${k}`);
    }
    const hint = body.figures.learning?.layout?.meta;
    $("#opt-hint").hidden = !hint?.hint;
    $("#opt-hint").textContent = hint?.hint ? `Is it still learning? ${hint.hint}` : "";
    $("#opt-hint").className = `hint ${hint?.verdict ?? ""}`;
    const contour = body.figures.contour?.layout?.meta;
    $("#opt-contour-pick").hidden = !contour;
    if (contour) fillContourPick(contour.x, contour.y);
    const cached = body.cached.length ? ` · cached: ${body.cached.join(", ")}` : "";
    $("#opt-timing").textContent =
      `server ${body.server_ms} ms${cached} · drawn in ${Math.round(performance.now() - t0)} ms`;
    performance.mark("hpo:optimizer");  // the optimiser views drawn (the benchmark reads it)
    app.opt.etag = etag;
    document.body.dataset.optimizer = etag ?? "";
  } catch (e) {
    $("#opt-timing").textContent = `cannot draw the optimiser's views: ${e.message}`;
  }
}

function fillContourPick(x, y) {
  const names = paramNames();
  for (const [sel, value] of [[$("#opt-x"), x], [$("#opt-y"), y]]) {
    if (sel.options.length !== names.length) {
      sel.innerHTML = names.map((n) => `<option>${esc(n)}</option>`).join("");
    }
    sel.value = value;
  }
}

async function redrawContour() {
  app.opt.x = $("#opt-x").value;
  app.opt.y = $("#opt-y").value;
  const name = app.study;
  const snap = app.etag ? `snapshot=${enc(app.etag)}` : "";
  const body = await getJSON(`api/studies/${enc(name)}/optimizer?kind=contour&${optQuery(snap)}`);
  if (name === app.study) await drawOptimizer("contour", body.figures.contour);
}

// -- notes ---------------------------------------------------------------------------------
async function putJSON(url, body) {
  const res = await fetch(url, {
    method: "PUT",
    headers: authHeaders({ "Content-Type": "application/json" }),
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(await errorText(res));
  return res.json();
}

function renderNote() {
  const box = $("#study-note");
  if (box.dataset.dirty || document.activeElement === box) return;  // the user is typing
  box.value = app.detail?.note ?? "";
}

async function saveStudyNote() {
  try {
    const d = await putJSON(`api/studies/${enc(app.study)}/note`, { note: $("#study-note").value });
    app.detail.note = d.note;
    delete $("#study-note").dataset.dirty;
    $("#study-note-status").textContent = `saved ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    $("#study-note-status").textContent = `not saved: ${e.message}`;
  }
}

async function saveTrialNote() {
  const n = app.detailTrial;
  try {
    const t = await putJSON(`api/studies/${enc(app.study)}/trials/${n}/note`, { note: $("#trial-note").value });
    $("#trial-note-status").textContent = `saved ${new Date().toLocaleTimeString()}`;
    $("#trial-note").value = t.note ?? "";
  } catch (e) {
    $("#trial-note-status").textContent = `not saved: ${e.message}`;
  }
}

// -- one trial's details -------------------------------------------------------------------
function short(v) {
  const text = typeof v === "string" ? v : JSON.stringify(v);
  return text.length > 160 ? `${text.slice(0, 160)}…` : text;
}

function kvRows(obj, cls = "") {
  return Object.entries(obj ?? {}).map(([k, v]) =>
    `<tr class="${cls}"><th>${esc(k)}</th><td>${esc(typeof v === "number" ? num(v) : short(v))}</td></tr>`).join("");
}

async function openTrial(number) {
  const name = app.study;
  try {
    const t = await getJSON(`api/studies/${enc(name)}/trials/${number}`);
    if (name !== app.study) return;
    app.detailTrial = number;
    $("#trial-detail").hidden = false;
    $("#trial-detail-title").innerHTML = `Trial ${t.number} <span class="badge ${t.state}">${t.state}</span>`;
    const params = {};
    for (const p of paramNames()) params[p] = p in t.params ? t.params[p] : "inactive";
    const mlflow = t.mlflow_url
      ? `<a href="${esc(t.mlflow_url)}" target="_blank" rel="noopener">${esc(t.mlflow_run_id)}</a>`
      : esc(t.mlflow_run_id ?? "–");
    $("#trial-detail-body").innerHTML = `
      ${t.reason ? `<pre class="error">${esc(t.reason)}</pre>` : ""}
      <table class="data" data-part="summary">
        <tr><th>value</th><td>${num(t.value)}</td></tr>
        <tr><th>duration</th><td>${duration(t.duration_s)}</td></tr>
        <tr><th>started</th><td>${when(t.started_at)}</td></tr>
        <tr><th>finished</th><td>${when(t.finished_at)}</td></tr>
        <tr><th>host · device</th><td>${esc(t.host ?? "–")} · ${esc(t.device ?? "–")}</td></tr>
        ${t.resumed ? `<tr><th>checkpoints</th><td data-part="resumed">${esc(t.resumed)}</td></tr>` : ""}
        <tr><th>MLflow run</th><td>${mlflow}</td></tr>
      </table>
      <h3>Parameters</h3><table class="data" data-part="params">${kvRows(params)}</table>
      <h3>Attributes</h3><table class="data" data-part="attrs">${kvRows(t.user_attrs)}${kvRows(t.system_attrs, "muted")}</table>
      <h3>Intermediate values (${Object.keys(t.intermediate).length})</h3>`;
    $("#trial-note").value = t.note ?? "";
    $("#trial-note-status").textContent = "";
    const steps = Object.keys(t.intermediate).map(Number);
    await draw("plot-trial", {
      data: [{ type: "scatter", mode: "lines+markers", x: steps, y: steps.map((k) => t.intermediate[k]), name: "value" }],
      layout: { margin: { l: 50, r: 10, t: 10, b: 35 }, xaxis: { title: { text: "step" } }, template: "none", height: 220 },
    });
  } catch (e) {
    status(`cannot open trial ${number}: ${e.message}`, true);
  }
}

function closeTrial() {
  $("#trial-detail").hidden = true;
  app.detailTrial = null;
}

// -- compare the best trials of two studies ----------------------------------------------
async function fillOtherStudies(name) {
  try {
    const studies = await getJSON("api/studies");
    if (name !== app.study) return;
    $("#other-study").innerHTML = `<option value="">(pick a study)</option>` + studies
      .filter((s) => s.name !== name)
      .map((s) => `<option value="${esc(s.name)}">${esc(s.name)} (${esc(s.strategy)}, ${s.n_trials} trials)</option>`)
      .join("");
  } catch { /* the list is a convenience; the rest of the page works without it */ }
}

async function compareStudies() {
  const other = $("#other-study").value;
  const table = $("#compare-studies-table");
  if (!other) { table.innerHTML = ""; return; }
  const [a, b] = await Promise.all([
    getJSON(`api/studies/${enc(app.study)}`), getJSON(`api/studies/${enc(other)}`),
  ]);
  const params = [...new Set([...Object.keys(a.space), ...Object.keys(b.space)])];
  const best = (d, p) => (d.best_trial && p in d.best_trial.params ? num(d.best_trial.params[p]) : "–");
  const rows = [
    ["strategy", (d) => d.strategy],
    ["direction", (d) => d.direction],
    ["trials", (d) => String(d.n_trials)],
    ["best value", (d) => num(d.best_value)],
    ["best trial", (d) => (d.best_trial ? `#${d.best_trial.number}` : "–")],
    ["its duration", (d) => duration(d.best_trial?.duration_s)],
    ...params.map((p) => [p, (d) => best(d, p)]),
  ];
  table.innerHTML = `<tr><th></th><th>${esc(a.name)}</th><th>${esc(b.name)}</th></tr>` + rows.map(([label, get]) => {
    const va = get(a), vb = get(b);
    return `<tr class="${va !== vb ? "diff" : ""}" data-row="${esc(label)}"><th>${esc(label)}</th><td>${esc(va)}</td><td>${esc(vb)}</td></tr>`;
  }).join("");
}

async function start() {
  const cfg = getJSON("api/config");
  wire();
  route();       // the first requests go out ...
  loadPlotly();  // ... then the big script
  try {
    app.pollMs = Math.max(250, (await cfg).poll_interval * 1000);
  } catch (e) {
    status(`cannot reach the hpo server: ${e.message}`, true);
  }
}

start();
