// The experiments list (polled) and the form that launches an experiment.

import {
  HttpError, TERMINAL, clear, el, formatTime, getJson, progressBar, statusBadge,
} from "./common.js";

const PAGE = 20;
const POLL_MS = 2000;
const REFERENCE_INITIALIZERS = ["zeros", "uniform", "normal", "he_normal", "lecun_uniform"];

let offset = 0;
let datasets = new Map();

// The list

async function refreshList() {
  const notice = document.getElementById("list-notice");
  try {
    const page = await getJson(`/v1/experiments?limit=${PAGE}&offset=${offset}`);
    renderList(page);
    notice.hidden = true;
  } catch (error) {
    notice.textContent = `Could not load the experiments (${error.message}); retrying.`;
    notice.hidden = false;
  }
}

function renderList(page) {
  const body = clear(document.querySelector("#experiments tbody"));
  for (const experiment of page.data) {
    const progress = experiment.progress;
    const link = el("a", { href: `/experiments/${encodeURIComponent(experiment.id)}` },
      experiment.name);
    const sourceOrId = experiment.spec.dataset.source ?? "uploaded dataset";
    body.append(el("tr", { dataset: { experimentId: experiment.id } },
      el("td", {}, link, el("div", { className: "muted small" }, sourceOrId)),
      el("td", {}, statusBadge(experiment.status)),
      el("td", { className: "progress-col" },
        progressBar(progress.epochs_done, progress.epochs_total),
        el("div", { className: "muted small" },
          `${progress.epochs_done} / ${progress.epochs_total} epochs`)),
      el("td", {}, `${progress.runs_done} / ${progress.runs_total}`),
      el("td", { className: "muted small" }, formatTime(experiment.created_at)),
    ));
  }
  document.getElementById("experiments-empty").hidden = page.count > 0;
  document.getElementById("experiments").hidden = page.data.length === 0;
  document.getElementById("experiments-count").textContent =
    page.count === 1 ? "1 experiment" : `${page.count} experiments`;
  const last = Math.min(page.count, offset + page.data.length);
  document.getElementById("page-label").textContent =
    page.count > PAGE ? `${offset + 1}–${last} of ${page.count}` : "";
  document.getElementById("newer").disabled = offset === 0;
  document.getElementById("older").disabled = offset + PAGE >= page.count;
  const active = page.data.some((experiment) => !TERMINAL.has(experiment.status));
  document.body.dataset.listActive = String(active);
}

function pollList() {
  refreshList().finally(() => setTimeout(pollList, POLL_MS));
}

// The form

function control(form, name) {
  return form.elements.namedItem(name);
}

function datasetNote(shape) {
  if (shape.classes === 0) return "regression: one linear unit, mse loss, mae metric";
  if (shape.classes === 2) return "binary: one sigmoid unit, binary cross-entropy";
  return `${shape.classes} classes: ${shape.classes} softmax units, sparse categorical cross-entropy`;
}

function describeDataset(shape) {
  const kind = shape.classes === 0 ? "regression" : `${shape.classes} classes`;
  return `${shape.source} · ${shape.rows} × ${shape.features}, ${kind}`;
}

async function loadChoices() {
  const [choices, initializers] = await Promise.all([
    getJson("/dashboard/catalog.json"),
    getJson("/v1/initializers"),
  ]);
  const form = document.getElementById("launch");

  datasets = new Map(choices.datasets.map((shape) => [shape.source, shape]));
  for (const shape of choices.datasets) {
    control(form, "source").append(el("option", { value: shape.source }, describeDataset(shape)));
  }
  for (const name of choices.optimizers) {
    control(form, "optimizer").append(el("option", { value: name, selected: name === "rmsprop" }, name));
  }
  for (const name of choices.activations) {
    control(form, "hidden_activation").append(el("option", { value: name, selected: name === "relu" }, name));
  }

  const box = clear(document.getElementById("initializers"));
  for (const entry of initializers.data) {
    for (const name of [entry.name, ...entry.aliases]) {
      const alias = name !== entry.name;
      box.append(el("label", { className: "check", title: alias ? `alias of ${entry.name}` : entry.class },
        el("input", { type: "checkbox", name: "initializer", value: name,
          checked: REFERENCE_INITIALIZERS.includes(name) }),
        el("span", {}, name)));
    }
  }
  updateNotes();
}

function updateNotes() {
  const form = document.getElementById("launch");
  const shape = datasets.get(control(form, "source").value);
  document.getElementById("dataset-note").textContent = shape ? datasetNote(shape) : "";
  const hidden = Number(control(form, "hidden_units").value) || 0;
  control(form, "hidden_activation").disabled = hidden <= 0;
  const chosen = form.querySelectorAll("input[name=initializer]:checked").length;
  const repeats = Number(control(form, "repeats").value) || 0;
  document.getElementById("output-note").textContent =
    `${chosen} initializer${chosen === 1 ? "" : "s"} × ${repeats} repeat${repeats === 1 ? "" : "s"} = ${chosen * repeats} runs`;
}

function numberField(form, name) {
  const text = control(form, name).value.trim();
  // A value the API will refuse is sent as typed, so the 422 names it.
  if (text === "") return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : text;
}

export function buildSpec(form) {
  const shape = datasets.get(control(form, "source").value);
  const layers = [];
  const hidden = numberField(form, "hidden_units");
  if (hidden !== null && hidden !== 0) {
    layers.push({ units: hidden, activation: control(form, "hidden_activation").value });
  }
  let loss = "binary_crossentropy";
  let metrics = ["accuracy"];
  if (shape && shape.classes === 0) {
    layers.push({ units: 1, activation: "linear" });
    loss = "mse";
    metrics = ["mae"];
  } else if (shape && shape.classes > 2) {
    layers.push({ units: shape.classes, activation: "softmax" });
    loss = "sparse_categorical_crossentropy";
  } else {
    layers.push({ units: 1, activation: "sigmoid" });
  }
  const learningRate = numberField(form, "learning_rate");
  const optimizer = learningRate === null
    ? control(form, "optimizer").value
    : { name: control(form, "optimizer").value, learning_rate: learningRate };
  const spec = {
    name: control(form, "name").value,
    dataset: { source: control(form, "source").value },
    model: { layers },
    initializers: [...form.querySelectorAll("input[name=initializer]:checked")]
      .map((input) => input.value),
    repeats: numberField(form, "repeats"),
    epochs: numberField(form, "epochs"),
    batch_size: numberField(form, "batch_size"),
    optimizer,
    loss,
    metrics,
    seed: numberField(form, "seed") ?? 0,
  };
  // A field left empty takes the API's default.
  for (const key of ["repeats", "epochs", "batch_size"]) {
    if (spec[key] === null) delete spec[key];
  }
  return spec;
}

// Which form control an error's field path belongs to.
function controlFor(form, field) {
  const head = field.split(".")[0];
  if (head === "initializers") return document.getElementById("initializers-field");
  if (head === "optimizer") {
    return field.endsWith("learning_rate") ? control(form, "learning_rate") : control(form, "optimizer");
  }
  if (head === "dataset") return control(form, "source");
  if (head === "model") return control(form, "hidden_units");
  return form.elements.namedItem(head);
}

function clearErrors(form) {
  for (const node of form.querySelectorAll("[aria-invalid=true]")) {
    node.removeAttribute("aria-invalid");
  }
  document.getElementById("form-errors").hidden = true;
}

function showErrors(form, title, errors) {
  const box = document.getElementById("form-errors");
  document.getElementById("form-errors-title").textContent = title;
  const list = clear(box.querySelector("ul"));
  for (const error of errors) {
    const received = error.value === undefined || error.value === null
      ? ""
      : ` (received ${JSON.stringify(error.value)})`;
    list.append(el("li", {},
      el("code", {}, error.field ?? "request"), ": ", error.message ?? "invalid", received));
    const control = error.field ? controlFor(form, error.field) : null;
    if (control instanceof Element) control.setAttribute("aria-invalid", "true");
  }
  box.hidden = false;
  box.scrollIntoView({ block: "nearest" });
}

async function launch(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const button = document.getElementById("launch-button");
  clearErrors(form);
  button.disabled = true;
  try {
    const response = await fetch("/v1/experiments", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(buildSpec(form)),
    });
    const body = await response.json().catch(() => null);
    if (response.status === 201 && body) {
      window.location.assign(`/experiments/${encodeURIComponent(body.id)}`);
      return;
    }
    if (body && Array.isArray(body.errors)) {
      showErrors(form, "The experiment was not launched:", body.errors);
    } else {
      throw new HttpError(response.status, body);
    }
  } catch (error) {
    showErrors(form, "The experiment was not launched:", [
      { field: null, message: error.message },
    ]);
  } finally {
    button.disabled = false;
  }
}

function start() {
  const form = document.getElementById("launch");
  form.addEventListener("submit", launch);
  form.addEventListener("input", updateNotes);
  form.addEventListener("change", updateNotes);
  document.getElementById("newer").addEventListener("click", () => {
    offset = Math.max(0, offset - PAGE);
    refreshList();
  });
  document.getElementById("older").addEventListener("click", () => {
    offset += PAGE;
    refreshList();
  });
  loadChoices()
    .then(() => { document.body.dataset.formReady = "true"; })
    .catch((error) => {
      showErrors(form, "The form could not load its choices:", [
        { field: null, message: error.message },
      ]);
    });
  pollList();
}

start();
