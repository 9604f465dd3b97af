// Small DOM and formatting helpers. Every text goes through textContent: nothing from the API is
// ever parsed as HTML.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const SVG = "http://www.w3.org/2000/svg";

export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  for (const child of children) el.append(child);
  return el;
}

export function pill(status, label) {
  const cls = String(status || "").toLowerCase();
  return h("span", { class: `pill ${cls}`, text: label || cls || "unknown" });
}

export function tags(values) {
  return (values || []).map((v) => h("span", { class: "tag", text: v }));
}

export function link(href, text, attrs) {
  return h("a", { href, ...attrs }, text);
}

export function itemHref(kind, name) {
  return `#/${kind}/${encodeURIComponent(name)}`;
}

export function rateText(value) {
  if (value === undefined || value === null) return "–";
  if (value === 0) return "0";
  if (value < 0.1) return "<0.1";
  if (value < 10) return value.toFixed(1);
  return Math.round(value).toLocaleString("en-US");
}

export function rateCell(value) {
  return h("span", { class: `rate${value ? "" : " zero"}`, text: rateText(value) });
}

const DAY = 86400000;

export function formatDate(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso || "";
  return d.toISOString().replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, " UTC");
}

export function expiryText(iso, now = Date.now()) {
  const left = new Date(iso).getTime() - now;
  const days = Math.floor(Math.abs(left) / DAY);
  if (left < 0) return days === 0 ? "expired today" : `expired ${days} day${days === 1 ? "" : "s"} ago`;
  if (days === 0) return "expires today";
  return `expires in ${days} day${days === 1 ? "" : "s"}`;
}

export function agoText(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 2) return "just now";
  if (s < 90) return `${s}s ago`;
  return `${Math.round(s / 60)} min ago`;
}

export function table(columns, rows, empty) {
  if (!rows.length) return h("div", { class: "table-wrap" }, h("div", { class: "empty", text: empty || "Nothing here." }));
  const head = h("tr", {}, columns.map((c) => h("th", { class: c.num ? "num" : undefined, text: c.title })));
  return h("div", { class: "table-wrap" },
    h("table", {}, h("thead", {}, head), h("tbody", {}, rows)));
}

export function errorList(errors, status) {
  if (!errors || !errors.length) return null;
  return h("div", { class: `error-text${status === "warning" ? " warning" : ""}`, role: "note" }, errors.join("\n"));
}

export function sparkline(points, width = 300, height = 48) {
  const el = svg("svg", { class: "spark", viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", role: "img" });
  if (points.length < 2) return el;
  const max = Math.max(1, ...points);
  const step = width / (points.length - 1);
  const coords = points.map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - (v / max) * (height - 6)).toFixed(1)}`);
  el.append(svg("polygon", { points: `0,${height} ${coords.join(" ")} ${width},${height}` }));
  el.append(svg("polyline", { points: coords.join(" ") }));
  return el;
}
