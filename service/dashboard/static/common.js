// Shared helpers. Every piece of text from the API reaches the page through
// textContent or attribute setters, never as markup.

export const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

const PALETTE = [
  "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
  "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22",
];

export function colorFor(index) {
  return PALETTE[index % PALETTE.length];
}

// el("td", {className: "x"}, "text", child) builds an element.
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node && !key.includes("-")) node[key] = value;
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

export class HttpError extends Error {
  constructor(status, body) {
    super(body?.detail ? String(body.detail) : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export async function getJson(url, options = {}) {
  const response = await fetch(url, { cache: "no-store", ...options });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new HttpError(response.status, body);
  return body;
}

export function statusBadge(status) {
  return el("span", { className: `badge status-${status}` }, status);
}

export function setBadge(node, status) {
  node.className = `badge status-${status}`;
  node.textContent = status;
}

export function progressBar(done, total) {
  const fill = el("div", { className: "progress-fill" });
  fill.style.width = `${percent(done, total)}%`;
  return el("div", { className: "progress", role: "progressbar",
    "aria-valuemin": 0, "aria-valuemax": total, "aria-valuenow": done }, fill);
}

export function percent(done, total) {
  return total > 0 ? Math.min(100, (100 * done) / total) : 0;
}

export function formatNumber(value, digits = 4) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude >= 1e5 || magnitude < 1e-3)) {
    return value.toExponential(2);
  }
  return value.toFixed(digits);
}

export function formatTime(text) {
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) return text;
  return date.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

export function swatch(color) {
  const mark = el("span", { className: "swatch" });
  mark.style.background = color;
  return mark;
}
