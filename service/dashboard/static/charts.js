// Line charts in SVG: a mean line per series with a shaded band around it.

const SVG = "http://www.w3.org/2000/svg";
const MARGIN = { top: 12, right: 16, bottom: 38, left: 58 };

function svg(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) {
    node.setAttribute(key, String(value));
  }
  return node;
}

function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const fraction = raw / power;
  const nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10;
  return nice * power;
}

export function ticks(low, high, count, integer = false) {
  let step = niceStep(high - low, count);
  if (integer) step = Math.max(1, Math.round(step));
  const first = Math.ceil(low / step - 1e-9) * step;
  const result = [];
  // Bounded: a span of a few ulps would otherwise never reach `high`.
  for (let i = 0; i <= count * 3 + 2; i += 1) {
    const value = first + i * step;
    if (value > high + step * 1e-9) break;
    result.push(Math.abs(value) < step * 1e-9 ? 0 : value);
  }
  return result;
}

function tickLabel(value, step) {
  if (Math.abs(value) >= 1e5 || (value !== 0 && Math.abs(value) < 1e-3)) {
    return value.toExponential(1);
  }
  const digits = Math.max(0, Math.min(6, -Math.floor(Math.log10(step)) + 1));
  return Number(value.toFixed(digits)).toString();
}

function extent(series) {
  let xMin = Infinity, xMax = -Infinity, yMin = Infinity, yMax = -Infinity;
  for (const line of series) {
    for (const point of line.points) {
      if (point.y === null) continue;
      xMin = Math.min(xMin, point.x);
      xMax = Math.max(xMax, point.x);
      yMin = Math.min(yMin, point.lo ?? point.y, point.y);
      yMax = Math.max(yMax, point.hi ?? point.y, point.y);
    }
  }
  if (!Number.isFinite(xMin)) return null;
  if (xMax === xMin) xMax = xMin + 1;
  // Flat, or flat but for rounding (means of equal values over different
  // counts): give the axis a readable span.
  if (yMax - yMin <= Math.abs(yMax) * 1e-9) {
    const pad = Math.abs(yMin) * 0.05 || 0.5;
    yMin -= pad;
    yMax += pad;
  }
  const pad = (yMax - yMin) * 0.05;
  return { xMin, xMax, yMin: yMin - pad, yMax: yMax + pad };
}

// Contiguous runs of points that have a value: a missing mean is a gap.
function segments(points) {
  const result = [];
  let current = [];
  for (const point of points) {
    if (point.y === null) {
      if (current.length) result.push(current);
      current = [];
    } else {
      current.push(point);
    }
  }
  if (current.length) result.push(current);
  return result;
}

/**
 * A chart as an element. series: [{label, color, dashed, points: [{x, y, lo, hi}]}]
 * with points sorted by x; y null where nothing was recorded.
 */
export function lineChart({ title, xLabel = "epoch", series, width = 560, height = 300 }) {
  const figure = document.createElement("figure");
  figure.className = "chart";
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  figure.append(caption);

  const box = extent(series);
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": title,
    preserveAspectRatio: "xMidYMid meet",
  });
  figure.append(root);
  if (box === null) {
    const empty = svg("text", { x: width / 2, y: height / 2, class: "chart-empty" });
    empty.textContent = "no values yet";
    root.append(empty);
    return figure;
  }

  const plotWidth = width - MARGIN.left - MARGIN.right;
  const plotHeight = height - MARGIN.top - MARGIN.bottom;
  const sx = (x) => MARGIN.left + ((x - box.xMin) / (box.xMax - box.xMin)) * plotWidth;
  const sy = (y) => MARGIN.top + (1 - (y - box.yMin) / (box.yMax - box.yMin)) * plotHeight;

  const grid = svg("g", { class: "grid" });
  const yTicks = ticks(box.yMin, box.yMax, 5);
  const yStep = yTicks.length > 1 ? yTicks[1] - yTicks[0] : 1;
  for (const value of yTicks) {
    const y = sy(value);
    grid.append(svg("line", { x1: MARGIN.left, x2: width - MARGIN.right, y1: y, y2: y }));
    const label = svg("text", { x: MARGIN.left - 6, y: y + 4, class: "tick y" });
    label.textContent = tickLabel(value, yStep);
    grid.append(label);
  }
  for (const value of ticks(box.xMin, box.xMax, 8, true)) {
    const x = sx(value);
    grid.append(svg("line", { x1: x, x2: x, y1: MARGIN.top, y2: height - MARGIN.bottom, class: "vertical" }));
    const label = svg("text", { x, y: height - MARGIN.bottom + 16, class: "tick x" });
    label.textContent = String(value);
    grid.append(label);
  }
  const axisLabel = svg("text", { x: MARGIN.left + plotWidth / 2, y: height - 4, class: "axis-label" });
  axisLabel.textContent = xLabel;
  grid.append(axisLabel);
  grid.append(svg("rect", { x: MARGIN.left, y: MARGIN.top, width: plotWidth, height: plotHeight, class: "frame" }));
  root.append(grid);

  const bands = svg("g", { class: "bands" });
  const lines = svg("g", { class: "lines" });
  for (const line of series) {
    for (const part of segments(line.points)) {
      if (part.some((point) => point.lo !== null && point.lo !== undefined)) {
        const upper = part.map((p) => `${sx(p.x)},${sy(p.hi ?? p.y)}`);
        const lower = part.map((p) => `${sx(p.x)},${sy(p.lo ?? p.y)}`).reverse();
        bands.append(svg("polygon", {
          points: [...upper, ...lower].join(" "),
          fill: line.color,
          "fill-opacity": line.dashed ? 0.08 : 0.16,
        }));
      }
      const path = svg("path", {
        d: part.map((p, i) => `${i ? "L" : "M"}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(""),
        stroke: line.color,
        fill: "none",
        "stroke-width": 2,
        "stroke-dasharray": line.dashed ? "6 4" : "none",
        "data-series": line.label,
        class: "series",
      });
      const hover = svg("title");
      hover.textContent = line.label;
      path.append(hover);
      lines.append(path);
      if (part.length === 1) {
        lines.append(svg("circle", { cx: sx(part[0].x), cy: sy(part[0].y), r: 3, fill: line.color }));
      }
    }
  }
  root.append(bands, lines);
  return figure;
}
