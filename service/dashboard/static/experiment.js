// One experiment: progress, live curves, the summary and per-layer diagnostics.
// History is read incrementally: each poll asks for what was written after the
// last cursor and sends the last ETag, so a poll with nothing new is a 304.

import {
  TERMINAL, clear, colorFor, el, formatNumber, formatTime, getJson, percent,
  setBadge, swatch,
} from "./common.js";
import { lineChart } from "./charts.js";

const POLL_MS = 1000;
const PAGE_LIMIT = 5000;
const DIAGNOSTIC = /^(val_)?layer\d+_/;

const experimentId = decodeURIComponent(window.location.pathname.split("/").pop());
const base = `/v1/experiments/${encodeURIComponent(experimentId)}`;

const state = {
  experiment: null,
  labels: [],
  cursor: 0,
  etag: null,
  // run id -> {initializer, repeat, epochs: Map(epoch -> metrics)}
  runs: new Map(),
  diverged: new Set(),
  summaryRunsDone: -1,
  diagnosticKey: null,
  drawPending: false,
};

// Polling

async function pollHistory() {
  let changed = false;
  for (;;) {
    const headers = state.etag ? { "If-None-Match": state.etag } : {};
    const response = await fetch(
      `${base}/history?since=${state.cursor}&limit=${PAGE_LIMIT}`,
      { headers, cache: "no-store" },
    );
    if (response.status === 304) return changed;
    if (!response.ok) throw new Error(`history: HTTP ${response.status}`);
    const page = await response.json();
    state.etag = response.headers.get("ETag");
    // A run trained again from scratch: what we hold of it is stale.
    for (const runId of page.reset_runs) state.runs.delete(runId);
    for (const point of page.points) {
      let run = state.runs.get(point.run_id);
      if (!run) {
        run = { initializer: point.initializer, repeat: point.repeat, epochs: new Map() };
        state.runs.set(point.run_id, run);
      }
      run.epochs.set(point.epoch, point.metrics);
    }
    state.diverged = new Set(page.diverged_runs);
    changed = changed || page.points.length > 0 || page.reset_runs.length > 0;
    state.cursor = page.cursor;
    if (!page.has_more) return changed;
  }
}

async function tick() {
  let terminal = false;
  try {
    const experiment = await getJson(base);
    state.experiment = experiment;
    terminal = TERMINAL.has(experiment.status);
    renderHeader(experiment);
    if (await pollHistory()) scheduleDraw();
    if (experiment.progress.runs_done !== state.summaryRunsDone) {
      await refreshSummary(experiment.progress.runs_done);
    }
    showNotice(null);
  } catch (error) {
    terminal = false;
    showNotice(`Lost contact with the server (${error.message}); retrying.`);
  }
  if (terminal) {
    document.body.dataset.polling = "done";
  } else {
    setTimeout(tick, POLL_MS);
  }
}

function showNotice(text) {
  const notice = document.getElementById("notice");
  notice.hidden = text === null;
  notice.textContent = text ?? "";
}

// Header and progress

function renderHeader(experiment) {
  const spec = experiment.spec;
  state.labels = spec.initializers.map((variant) => variant.label);
  document.title = `initlab · ${experiment.name}`;
  document.getElementById("experiment-name").textContent = experiment.name;
  setBadge(document.getElementById("experiment-status"), experiment.status);

  const optimizer = typeof spec.optimizer === "string" ? spec.optimizer : spec.optimizer.name;
  const dataset = spec.dataset.source ?? `uploaded ${spec.dataset.id.slice(0, 12)}…`;
  const layers = spec.model.layers.map((layer) => `${layer.units} ${layer.activation}`).join(" → ");
  document.getElementById("experiment-meta").textContent = [
    dataset,
    `${spec.initializers.length} initializers × ${spec.repeats} repeats`,
    `${spec.epochs} epochs`,
    `${optimizer}, batch ${spec.batch_size}`,
    `layers ${layers}`,
    `created ${formatTime(experiment.created_at)}`,
  ].join(" · ");

  const progress = experiment.progress;
  document.getElementById("progress-fill").style.width =
    `${percent(progress.epochs_done, progress.epochs_total)}%`;
  const byStatus = Object.entries(progress.runs_by_status)
    .filter(([, count]) => count > 0)
    .map(([status, count]) => `${count} ${status}`)
    .join(", ");
  document.getElementById("progress-text").textContent =
    `${progress.epochs_done} / ${progress.epochs_total} epochs · ` +
    `${progress.runs_done} / ${progress.runs_total} runs done (${byStatus})`;
}

// Curves

function scheduleDraw() {
  if (state.drawPending) return;
  state.drawPending = true;
  requestAnimationFrame(() => {
    state.drawPending = false;
    drawCurves();
    drawDiagnostics();
  });
}

function labelsInOrder() {
  const labels = [...state.labels];
  for (const run of state.runs.values()) {
    if (!labels.includes(run.initializer)) labels.push(run.initializer);
  }
  return labels;
}

function metricNames() {
  const names = new Set();
  for (const run of state.runs.values()) {
    for (const metrics of run.epochs.values()) {
      for (const name of Object.keys(metrics)) names.add(name);
    }
  }
  return names;
}

// Mean and sample std over the repeats of one initializer, per epoch; nulls
// (non-finite values) are skipped.
function meanBand(label, metric) {
  const byEpoch = new Map();
  for (const run of state.runs.values()) {
    if (run.initializer !== label) continue;
    for (const [epoch, metrics] of run.epochs) {
      const value = metrics[metric];
      if (value === null || value === undefined || !Number.isFinite(Number(value))) continue;
      if (!byEpoch.has(epoch)) byEpoch.set(epoch, []);
      byEpoch.get(epoch).push(Number(value));
    }
  }
  const points = [];
  for (const epoch of [...byEpoch.keys()].sort((a, b) => a - b)) {
    const values = byEpoch.get(epoch);
    const mean = values.reduce((sum, v) => sum + v, 0) / values.length;
    let std = null;
    if (values.length > 1) {
      const squares = values.reduce((sum, v) => sum + (v - mean) ** 2, 0);
      std = Math.sqrt(squares / (values.length - 1));
    }
    points.push({
      x: epoch, y: mean, n: values.length,
      lo: std === null ? null : mean - std,
      hi: std === null ? null : mean + std,
    });
  }
  return points;
}

function curveSeries(metric, withValidation) {
  const series = [];
  labelsInOrder().forEach((label, index) => {
    const color = colorFor(index);
    series.push({ label: `${label} ${metric}`, color, dashed: false, points: meanBand(label, metric) });
    if (withValidation) {
      series.push({
        label: `${label} val_${metric}`, color, dashed: true,
        points: meanBand(label, `val_${metric}`),
      });
    }
  });
  return series;
}

function drawLegend() {
  const legend = clear(document.getElementById("legend"));
  labelsInOrder().forEach((label, index) => {
    legend.append(el("span", { className: "legend-item" }, swatch(colorFor(index)), label));
  });
  legend.append(
    el("span", { className: "legend-item muted" }, el("span", { className: "line solid" }), "train"),
    el("span", { className: "legend-item muted" }, el("span", { className: "line dashed" }), "validation"),
  );
}

function drawCurves() {
  const names = metricNames();
  const base = [...names].filter((name) => !name.startsWith("val_") && !DIAGNOSTIC.test(name));
  base.sort((a, b) => (a === "loss" ? -1 : b === "loss" ? 1 : a.localeCompare(b)));
  const charts = clear(document.getElementById("charts"));
  for (const metric of base) {
    const chart = lineChart({ title: metric, series: curveSeries(metric, names.has(`val_${metric}`)) });
    chart.dataset.metric = metric;
    charts.append(chart);
  }
  document.getElementById("curves-empty").hidden = base.length > 0;
  drawLegend();
  const diverged = [...state.diverged].filter((runId) => state.runs.has(runId)).length;
  if (diverged > 0) {
    charts.append(el("p", { className: "notice wide" },
      `${diverged} run${diverged === 1 ? "" : "s"} diverged: their non-finite values are left out.`));
  }
}

// Diagnostics

function naturalCompare(a, b) {
  return a.localeCompare(b, undefined, { numeric: true });
}

function drawDiagnostics() {
  const keys = [...metricNames()].filter((name) => DIAGNOSTIC.test(name)).sort(naturalCompare);
  const picker = document.getElementById("diagnostic-picker");
  const select = document.getElementById("diagnostic-key");
  const table = document.getElementById("diagnostics");
  document.getElementById("diagnostics-empty").hidden = keys.length > 0;
  picker.hidden = keys.length === 0;
  table.hidden = keys.length === 0;
  if (keys.length === 0) {
    clear(document.getElementById("diagnostic-chart"));
    return;
  }

  if (!keys.includes(state.diagnosticKey)) state.diagnosticKey = keys[0];
  const known = [...select.options].map((option) => option.value);
  if (known.join("\n") !== keys.join("\n")) {
    clear(select);
    for (const key of keys) select.append(el("option", { value: key }, key));
  }
  select.value = state.diagnosticKey;

  const labels = labelsInOrder();
  const series = labels.map((label, index) => ({
    label, color: colorFor(index), dashed: false, points: meanBand(label, state.diagnosticKey),
  }));
  const chart = lineChart({ title: state.diagnosticKey, series, height: 260 });
  clear(document.getElementById("diagnostic-chart")).append(chart);

  // The latest epoch's mean for every key and initializer.
  const headRow = clear(table.querySelector("thead tr"));
  headRow.append(el("th", { scope: "col" }, "metric (latest epoch, mean)"));
  labels.forEach((label, index) => {
    headRow.append(el("th", { scope: "col" }, swatch(colorFor(index)), label));
  });
  const body = clear(table.querySelector("tbody"));
  for (const key of keys) {
    const row = el("tr", { className: key === state.diagnosticKey ? "selected" : "" },
      el("th", { scope: "row" }, key));
    for (const label of labels) {
      const points = meanBand(label, key);
      const last = points[points.length - 1];
      row.append(el("td", {}, last ? formatNumber(last.y) : "–"));
    }
    row.addEventListener("click", () => {
      state.diagnosticKey = key;
      drawDiagnostics();
    });
    body.append(row);
  }
}

// Summary

async function refreshSummary(runsDone) {
  const caption = document.getElementById("summary-caption");
  if (runsDone === 0) {
    state.summaryRunsDone = 0;
    return;
  }
  let summary;
  try {
    summary = await getJson(`${base}/summary`);
  } catch (error) {
    caption.textContent = `No summary: ${error.message}`;
    return;
  }
  state.summaryRunsDone = runsDone;
  renderSummary(summary);
}

function meanStd(stat) {
  if (stat.mean === null) return "–";
  return stat.std === null
    ? formatNumber(stat.mean)
    : `${formatNumber(stat.mean)} ± ${formatNumber(stat.std)}`;
}

function renderSummary(summary) {
  const labels = labelsInOrder();
  const table = document.getElementById("summary");
  const direction = summary.higher_is_better ? "higher is better" : "lower is better";
  document.getElementById("summary-caption").textContent =
    `Ranked by the final ${summary.metric} (${direction}) over ` +
    `${summary.runs_counted} finished run${summary.runs_counted === 1 ? "" : "s"}: ` +
    "mean ± std over repeats, the 95% confidence interval of the mean, and how " +
    "often each comes first when the repeats are resampled.";
  document.getElementById("summary-metric").textContent = `Final ${summary.metric}`;
  const body = clear(table.querySelector("tbody"));
  for (const entry of summary.ranking) {
    const stat = entry.final;
    const ci = stat.ci_low === null ? "–" : `${formatNumber(stat.ci_low)} … ${formatNumber(stat.ci_high)}`;
    body.append(el("tr", { dataset: { initializer: entry.initializer } },
      el("td", {}, entry.rank === null ? "–" : String(entry.rank)),
      el("th", { scope: "row" }, swatch(colorFor(labels.indexOf(entry.initializer))), entry.initializer),
      el("td", {}, meanStd(stat)),
      el("td", {}, ci),
      el("td", {}, entry.diverged ? `${stat.count} (+${entry.diverged} diverged)` : String(stat.count)),
      el("td", {}, `${Math.round(entry.first_place_share * 100)}%`),
    ));
  }
  table.hidden = summary.ranking.length === 0;

  const box = document.getElementById("comparisons-box");
  const comparisons = clear(document.querySelector("#comparisons tbody"));
  for (const pair of summary.comparisons) {
    comparisons.append(el("tr", {},
      el("td", {}, pair.a), el("td", {}, pair.b),
      el("td", {}, formatNumber(pair.difference)),
      el("td", {}, formatNumber(pair.hedges_g, 2)),
      el("td", {}, formatNumber(pair.p_value)),
    ));
  }
  box.hidden = summary.comparisons.length === 0;
}

document.getElementById("diagnostic-key").addEventListener("change", (event) => {
  state.diagnosticKey = event.target.value;
  drawDiagnostics();
});

tick();
