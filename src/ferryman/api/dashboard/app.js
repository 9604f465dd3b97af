// ferryman dashboard: polls the read-only API (Traefik's JSON shapes) and renders it; no reloads,
// no external resources. The API is found relative to this page: <x>/dashboard/ -> <x>/api/.
import {
  agoText, errorList, expiryText, formatDate, h, itemHref, link, pill, rateCell, rateText, sparkline, table, tags,
} from "./ui.js";

const API = new URL("../api/", window.location.href);
const HISTORY = 90; // samples kept for the request-rate graph
const PER_PAGE = 500;
const MAX_ROWS = 1000; // rows rendered per table
const MAX_PROBLEMS = 50; // elements listed under "Needs attention"

const state = {
  version: null,
  overview: null,
  entrypoints: [],
  routers: [],
  services: [],
  middlewares: [],
  certificates: [],
  traffic: null, // {time, entryPoints, routers, services} cumulative counters
  rates: null, // {total, errors, entryPoints, routers, services} per second
  history: [],
  updated: 0,
  error: "",
  trafficAvailable: true,
};
const ui = { search: {}, interval: 2000, timer: 0, inFlight: false, lastFetchMs: 0 };

// ---------------------------------------------------------------------------------------- data

async function getJSON(path) {
  const response = await fetch(new URL(path, API), { headers: { Accept: "application/json" }, cache: "no-store" });
  if (!response.ok) {
    const error = new Error(`${path}: HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return { body: await response.json(), next: Number(response.headers.get("X-Next-Page") || "1") };
}

async function getAll(path) {
  const items = [];
  for (let page = 1; page < 1000;) {
    const { body, next } = await getJSON(`${path}?per_page=${PER_PAGE}&page=${page}`);
    items.push(...body);
    if (next <= page) break;
    page = next;
  }
  return items;
}

async function getTraffic() {
  if (!state.trafficAvailable) return null;
  try {
    return (await getJSON("traffic")).body;
  } catch (error) {
    if (error.status === 404) state.trafficAvailable = false;
    return null;
  }
}

function perSecond(now, before, seconds) {
  const out = {};
  for (const [name, counters] of Object.entries(now || {})) {
    const prev = (before || {})[name];
    out[name] = {
      requests: prev ? Math.max(0, counters.requests - prev.requests) / seconds : 0,
      errors: prev ? Math.max(0, (counters.errors || 0) - (prev.errors || 0)) / seconds : 0,
    };
  }
  return out;
}

function updateRates(traffic) {
  const previous = state.traffic;
  state.traffic = traffic;
  if (!traffic || !previous) return;
  const seconds = traffic.time - previous.time;
  if (!(seconds > 0)) return;
  const entryPoints = perSecond(traffic.entryPoints, previous.entryPoints, seconds);
  const total = Object.values(entryPoints).reduce((sum, r) => sum + r.requests, 0);
  const errors = Object.values(entryPoints).reduce((sum, r) => sum + r.errors, 0);
  state.rates = {
    total, errors, entryPoints,
    routers: perSecond(traffic.routers, previous.routers, seconds),
    services: perSecond(traffic.services, previous.services, seconds),
  };
  state.history.push(total);
  if (state.history.length > HISTORY) state.history.shift();
}

async function refresh() {
  if (ui.inFlight) return;
  ui.inFlight = true;
  const started = performance.now();
  try {
    const [overview, entrypoints, routers, services, middlewares, certificates, traffic] = await Promise.all([
      getJSON("overview").then((r) => r.body), getAll("entrypoints"), getAll("http/routers"),
      getAll("http/services"), getAll("http/middlewares"), getAll("certificates").catch(() => []), getTraffic(),
    ]);
    if (!state.version) state.version = (await getJSON("version")).body;
    Object.assign(state, { overview, entrypoints, routers, services, middlewares, certificates });
    updateRates(traffic);
    state.updated = Date.now();
    state.error = "";
  } catch (error) {
    state.error = `Cannot reach the API at ${API.pathname}: ${error.message}. Showing the last data received.`;
  } finally {
    ui.inFlight = false;
    ui.lastFetchMs = performance.now() - started;
  }
  render();
}

function schedule() {
  clearTimeout(ui.timer);
  // never spend more than a fifth of the time fetching (a very large configuration polls slower)
  const delay = Math.max(ui.interval, 5 * ui.lastFetchMs);
  if (ui.interval > 0) ui.timer = setTimeout(async () => { await refresh(); schedule(); }, delay);
}

// ------------------------------------------------------------------------------------- routing

function currentRoute() {
  const raw = window.location.hash.replace(/^#\/?/, "");
  const [path, query] = raw.split("?");
  const [view, ...rest] = path.split("/");
  return { view: view || "overview", name: rest.length ? decodeURIComponent(rest.join("/")) : "",
           params: new URLSearchParams(query || "") };
}

function statusChips(view, params, items) {
  const current = params.get("status") || "";
  const counts = { "": items.length };
  for (const item of items) counts[item.status] = (counts[item.status] || 0) + 1;
  const options = [["", "All"], ["enabled", "Success"], ["warning", "Warnings"], ["disabled", "Errors"]];
  return h("div", { class: "chips", role: "group", "aria-label": "Filter by status" }, options.map(([value, label]) =>
    link(`#/${view}${value ? `?status=${value}` : ""}`, `${label} (${counts[value] || 0})`,
         { class: value === current ? "active" : undefined })));
}

const PLACEHOLDERS = {
  routers: "Search by name, rule, service, provider or error…",
  services: "Search by name, type or provider…",
  middlewares: "Search by name, type or provider…",
  certificates: "Search by name or issuer…",
};

function searchBox(view, onInput) {
  const input = h("input", {
    type: "search", placeholder: PLACEHOLDERS[view] || "Search…", value: ui.search[view] || "",
    "aria-label": "Search", "data-search": view,
  });
  input.addEventListener("input", () => { ui.search[view] = input.value; onInput(); });
  return input;
}

function matches(view, ...fields) {
  const term = (ui.search[view] || "").trim().toLowerCase();
  return !term || fields.some((f) => String(f || "").toLowerCase().includes(term));
}

// --------------------------------------------------------------------------------------- views

function sectionCard(title, view, section) {
  const { total = 0, warnings = 0, errors = 0 } = section || {};
  const ok = Math.max(0, total - warnings - errors);
  const bar = h("div", { class: "bar" });
  for (const [cls, n] of [["ok", ok], ["warn", warnings], ["err", errors]]) {
    if (!n) continue;
    const segment = h("i", { class: cls });
    segment.style.width = `${(100 * n) / total}%`;
    bar.append(segment);
  }
  return h("a", { class: "card", href: `#/${view}`, "data-card": view },
    h("h3", {}, title),
    h("div", { class: "big", text: total }),
    bar,
    h("div", { class: "stat-row" },
      h("span", {}, h("i", { class: "dot ok" }), `${ok} ok`),
      h("span", {}, h("i", { class: "dot warn" }), `${warnings} warning${warnings === 1 ? "" : "s"}`),
      h("span", {}, h("i", { class: "dot err" }), `${errors} error${errors === 1 ? "" : "s"}`)));
}

function trafficCard() {
  if (!state.trafficAvailable) {
    return h("div", { class: "card" }, h("h3", {}, "Requests"),
      h("p", { class: "muted", text: "Request counters are not available from this API." }));
  }
  const rates = state.rates;
  const top = rates ? Object.entries(rates.routers).filter(([, r]) => r.requests > 0)
    .sort((a, b) => b[1].requests - a[1].requests).slice(0, 5) : [];
  return h("div", { class: "card", "data-card": "traffic" },
    h("h3", {}, "Requests per second", h("span", { class: "muted", text: rates ? `${rateText(rates.errors)} 5xx/s` : "" })),
    h("div", { class: "big", "data-rate": "total", text: rates ? rateText(rates.total) : "…" }),
    sparkline(state.history),
    top.length ? h("ul", { class: "top-list" }, top.map(([name, r]) =>
      h("li", {}, link(itemHref("routers", name), name), h("span", { class: "rate", text: `${rateText(r.requests)}/s` }))))
      : h("p", { class: "muted", text: rates ? "No traffic in the last interval." : "Measuring…" }));
}

function certificatesCard() {
  const certs = state.certificates;
  const soonest = certs.filter((c) => c.status !== "expired")
    .sort((a, b) => new Date(a.notAfter) - new Date(b.notAfter))[0];
  const expired = certs.filter((c) => c.status === "expired").length;
  const warning = certs.filter((c) => c.status === "warning").length;
  return h("a", { class: "card", href: "#/certificates", "data-card": "certificates" },
    h("h3", {}, "TLS certificates"),
    h("div", { class: "big", text: certs.length }),
    h("div", { class: "stat-row" },
      h("span", {}, h("i", { class: "dot warn" }), `${warning} expiring < 30 days`),
      h("span", {}, h("i", { class: "dot err" }), `${expired} expired`)),
    soonest ? h("p", { class: "muted" }, `Next expiry: ${soonest.commonName || soonest.sans?.[0] || "?"} — ${expiryText(soonest.notAfter)}`) : null);
}

function problemsCard() {
  const bad = [
    ...state.routers.filter((r) => r.status !== "enabled").map((r) => ["routers", r]),
    ...state.services.filter((s) => s.status !== "enabled").map((s) => ["services", s]),
    ...state.middlewares.filter((m) => m.status !== "enabled").map((m) => ["middlewares", m]),
  ];
  if (!bad.length) return null;
  const shown = bad.slice(0, MAX_PROBLEMS);
  return [h("h2", {}, `Needs attention (${bad.length})`),
    h("div", { class: "card" }, h("ul", { class: "problems" }, shown.map(([kind, item]) =>
      h("li", { "data-problem": item.name },
        pill(item.status), " ", h("span", { class: "muted", text: kind.slice(0, -1) }), " ",
        link(itemHref(kind, item.name), item.name, { class: "name" }),
        errorList(item.error, item.status)))),
      bad.length > shown.length ? h("p", { class: "muted" }, `and ${bad.length - shown.length} more: `,
        link("#/routers?status=disabled", "routers with errors"), ", ", link("#/routers?status=warning", "with warnings"))
        : null)];
}

function entryPointAddress(ep) {
  return ep.address || "";
}

function renderOverview() {
  const o = state.overview || {};
  const features = o.features || {};
  const eps = state.entrypoints;
  return [
    h("h1", {}, "Overview"),
    h("p", { class: "sub" }, "What this ferryman instance serves right now. Data refreshes on its own."),
    problemsCard(),
    h("h2", {}, "Entry points"),
    h("div", { class: "grid" }, eps.map((ep) => {
      const rate = state.rates?.entryPoints?.[ep.name];
      return h("a", { class: "card", href: itemHref("entrypoints", ep.name), "data-entrypoint": ep.name },
        h("h3", {}, ep.name, ep.http?.tls ? pill("neutral", "TLS") : null),
        h("div", { class: "mono", text: entryPointAddress(ep) }),
        state.trafficAvailable ? h("div", { class: "muted" }, rateCell(rate?.requests ?? (state.rates ? 0 : undefined)), " req/s") : null);
    })),
    h("h2", {}, "HTTP"),
    h("div", { class: "grid" },
      sectionCard("Routers", "routers", o.http?.routers),
      sectionCard("Services", "services", o.http?.services),
      sectionCard("Middlewares", "middlewares", o.http?.middlewares),
      trafficCard()),
    h("h2", {}, "TLS, features and providers"),
    h("div", { class: "grid" },
      certificatesCard(),
      h("div", { class: "card", "data-card": "features" }, h("h3", {}, "Features"),
        h("dl", { class: "kv" },
          h("dt", {}, "Tracing"), h("dd", {}, features.tracing ? pill("neutral", features.tracing) : pill("off", "off")),
          h("dt", {}, "Metrics"), h("dd", {}, features.metrics ? pill("neutral", features.metrics) : pill("off", "off")),
          h("dt", {}, "Access log"), h("dd", {}, features.accessLog ? pill("neutral", "on") : pill("off", "off")))),
      h("div", { class: "card", "data-card": "providers" }, h("h3", {}, "Providers"),
        (o.providers || []).length ? h("div", {}, (o.providers || []).map((p) => pill("neutral", p)), " ")
          : h("p", { class: "muted", text: "No provider configured." }))),
  ];
}

function routerRow(r) {
  const rate = state.rates?.routers?.[r.name] ?? (state.rates ? { requests: 0 } : undefined);
  return h("tr", { "data-router": r.name, "data-status": r.status },
    h("td", {}, pill(r.status)),
    h("td", {}, link(itemHref("routers", r.name), r.name, { class: "name" }), errorList(r.error, r.status)),
    h("td", { class: "rule-cell" }, h("span", { class: "rule", text: r.rule || "" })),
    h("td", {}, tags(r.using || r.entryPoints)),
    h("td", {}, r.tls ? pill("neutral", "TLS") : ""),
    h("td", {}, r.service ? link(itemHref("services", qualify(r.service, r.provider)), r.service) : ""),
    h("td", {}, tags(r.middlewares)),
    h("td", { text: r.provider }),
    h("td", { class: "num", text: r.priorityStr ?? r.priority ?? "" }),
    state.trafficAvailable ? h("td", { class: "num" }, rateCell(rate?.requests)) : null);
}

function qualify(name, provider) {
  return name.includes("@") || !provider ? name : `${name}@${provider}`;
}

function capped(matching) {
  // A very large configuration: render the first MAX_ROWS rows, say so, and let search narrow it.
  return matching.length > MAX_ROWS ? matching.slice(0, MAX_ROWS) : matching;
}

function cappedNote(total) {
  return total > MAX_ROWS
    ? h("p", { class: "muted", text: `Showing the first ${MAX_ROWS} of ${total}; search to narrow the list.` }) : null;
}

function listView(view, title, items, columns, row, fields) {
  const route = currentRoute();
  const status = route.params.get("status") || "";
  const body = h("div", {});
  const fill = () => {
    const matching = items.filter((i) => (!status || i.status === status) && matches(view, ...fields(i)));
    body.replaceChildren(table(columns.filter(Boolean), capped(matching).map(row), "No element matches."),
      cappedNote(matching.length) || "");
  };
  fill();
  return [
    h("h1", {}, title),
    h("div", { class: "toolbar" }, searchBox(view, fill), statusChips(view, route.params, items)),
    body,
  ];
}

function renderRouters() {
  return listView("routers", "HTTP routers", state.routers, [
    { title: "Status" }, { title: "Name" }, { title: "Rule" }, { title: "Entry points" }, { title: "TLS" },
    { title: "Service" }, { title: "Middlewares" }, { title: "Provider" }, { title: "Priority", num: true },
    state.trafficAvailable ? { title: "Req/s", num: true } : null,
  ], routerRow, (r) => [r.name, r.rule, r.service, r.provider, ...(r.error || [])]);
}

function serverList(s) {
  const servers = s.loadBalancer?.servers || [];
  const status = s.serverStatus || {};
  if (!servers.length) {
    const children = (s.weighted || s.mirroring || s.failover || s.highestRandomWeight);
    if (s.weighted?.services) return tags(s.weighted.services.map((c) => `${c.name} ×${c.weight}`));
    if (s.failover) return tags([s.failover.service, s.failover.fallback].filter(Boolean));
    if (s.mirroring) return tags([s.mirroring.service, ...(s.mirroring.mirrors || []).map((m) => m.name)]);
    return children ? "" : h("span", { class: "muted", text: "—" });
  }
  return servers.map((server) => {
    const url = server.url || server.address || "";
    const up = status[url];
    return h("div", { class: "server", "data-server": url },
      up ? pill(up.toLowerCase(), up) : pill("off", "unknown"), h("span", { text: url }));
  });
}

function renderServices() {
  return listView("services", "HTTP services", state.services, [
    { title: "Status" }, { title: "Name" }, { title: "Type" }, { title: "Servers" }, { title: "Used by" },
    { title: "Provider" }, state.trafficAvailable ? { title: "Req/s", num: true } : null,
  ], (s) => h("tr", { "data-service": s.name, "data-status": s.status },
    h("td", {}, pill(s.status)),
    h("td", {}, link(itemHref("services", s.name), s.name, { class: "name" }), errorList(s.error, s.status)),
    h("td", { text: s.type || "" }),
    h("td", {}, serverList(s)),
    h("td", {}, (s.usedBy || []).map((u) => link(itemHref("routers", u), h("span", { class: "tag", text: u })))),
    h("td", { text: s.provider }),
    state.trafficAvailable ? h("td", { class: "num" }, rateCell(state.rates?.services?.[s.name]?.requests)) : null),
  (s) => [s.name, s.type, s.provider, ...(s.error || [])]);
}

function renderMiddlewares() {
  return listView("middlewares", "HTTP middlewares", state.middlewares, [
    { title: "Status" }, { title: "Name" }, { title: "Type" }, { title: "Used by" }, { title: "Provider" },
  ], (m) => h("tr", { "data-middleware": m.name, "data-status": m.status },
    h("td", {}, pill(m.status)),
    h("td", {}, link(itemHref("middlewares", m.name), m.name, { class: "name" }), errorList(m.error, m.status)),
    h("td", { text: m.type || "" }),
    h("td", {}, (m.usedBy || []).map((u) => h("span", { class: "tag", text: u }))),
    h("td", { text: m.provider })),
  (m) => [m.name, m.type, m.provider]);
}

function renderCertificates() {
  const now = Date.now();
  const route = currentRoute();
  const status = route.params.get("status") || "";
  const certs = state.certificates;
  const body = h("div", {});
  const fill = () => {
    const rows = certs.filter((c) => (!status || c.status === status)
      && matches("certificates", c.commonName, c.issuerOrg, c.issuerCN, ...(c.sans || [])))
      .sort((a, b) => new Date(a.notAfter) - new Date(b.notAfter))
      .map((c) => h("tr", { "data-cert": c.commonName || c.name, "data-status": c.status },
        h("td", {}, pill(c.status, c.status === "enabled" ? "valid" : c.status)),
        h("td", {}, h("span", { class: "name", text: c.commonName || "(no common name)" })),
        h("td", {}, tags(c.sans)),
        h("td", { text: c.issuerOrg || c.issuerCN || "" }),
        h("td", { class: "cert-expiry" }, h("div", { text: formatDate(c.notAfter) }),
          h("div", { class: "muted", text: expiryText(c.notAfter, now) })),
        h("td", { class: "mono", text: `${c.keyType || ""}${c.keySize ? ` ${c.keySize}` : ""}` }),
        h("td", { class: "mono", title: c.certFingerprint, text: (c.certFingerprint || c.name || "").slice(0, 16) + "…" })));
    body.replaceChildren(table([{ title: "Status" }, { title: "Common name" }, { title: "Names (SANs)" },
      { title: "Issuer" }, { title: "Not after" }, { title: "Key" }, { title: "SHA-256" }], rows,
    certs.length ? "No certificate matches." : "No certificate loaded (certificates appear once an entry point serves TLS)."));
  };
  fill();
  const chips = h("div", { class: "chips" }, [["", "All"], ["enabled", "Valid"], ["warning", "Expiring soon"], ["expired", "Expired"]]
    .map(([value, label]) => link(`#/certificates${value ? `?status=${value}` : ""}`,
      `${label} (${value ? certs.filter((c) => c.status === value).length : certs.length})`,
      { class: value === status ? "active" : undefined })));
  return [h("h1", {}, "TLS certificates"),
    h("p", { class: "sub" }, "Warning under 30 days before expiry, as Traefik."),
    h("div", { class: "toolbar" }, searchBox("certificates", fill), chips), body];
}

function renderEntryPoints() {
  return [h("h1", {}, "Entry points"), table([{ title: "Name" }, { title: "Address" }, { title: "TLS" },
    { title: "Redirections" }, { title: "Grace timeout" }, state.trafficAvailable ? { title: "Req/s", num: true } : null]
    .filter(Boolean), state.entrypoints.map((ep) => h("tr", { "data-entrypoint": ep.name },
    h("td", {}, link(itemHref("entrypoints", ep.name), ep.name, { class: "name" })),
    h("td", { class: "mono", text: entryPointAddress(ep) }),
    h("td", {}, ep.http?.tls ? pill("neutral", ep.http.tls.options ? `TLS (${ep.http.tls.options})` : "TLS") : ""),
    h("td", {}, ep.http?.redirections?.entryPoint ? `→ ${ep.http.redirections.entryPoint.to} (${ep.http.redirections.entryPoint.scheme || "https"})` : ""),
    h("td", { text: ep.transport?.lifeCycle?.graceTimeOut || "" }),
    state.trafficAvailable ? h("td", { class: "num" }, rateCell(state.rates?.entryPoints?.[ep.name]?.requests)) : null)))];
}

function flowStep(label, content) {
  return h("div", { class: "step" }, h("small", { text: label }), content);
}

function renderDetail(kind, name) {
  const lists = { routers: state.routers, services: state.services, middlewares: state.middlewares,
                  entrypoints: state.entrypoints };
  const item = (lists[kind] || []).find((i) => i.name === name);
  const title = { routers: "Router", services: "Service", middlewares: "Middleware", entrypoints: "Entry point" }[kind];
  const crumbs = h("div", { class: "crumbs" }, link(`#/${kind}`, `← ${title}s`));
  if (!item) return [crumbs, h("div", { class: "card empty", text: `${title} ${name} is not in the current configuration.` })];
  const parts = [crumbs, h("div", { class: "detail-head" }, h("h1", {}, name), item.status ? pill(item.status) : null,
    item.provider ? pill("neutral", item.provider) : null)];
  if (item.error?.length) parts.push(errorList(item.error, item.status));
  if (kind === "routers") {
    const arrow = () => h("span", { class: "arrow", text: "→" });
    parts.push(h("h2", {}, "Flow"), h("div", { class: "flow" },
      flowStep("Entry points", tags(item.using || item.entryPoints)), arrow(),
      flowStep("Rule", h("span", { class: "rule mono", text: item.rule || "" })),
      ...(item.middlewares || []).flatMap((m) => [arrow(), flowStep("Middleware",
        link(itemHref("middlewares", qualify(m, item.provider)), m))]), arrow(),
      flowStep("Service", item.service ? link(itemHref("services", qualify(item.service, item.provider)), item.service) : "—")));
  }
  if (kind === "services") parts.push(h("h2", {}, "Servers"), h("div", { class: "card" }, serverList(item)));
  parts.push(h("h2", {}, "Configuration (JSON from the API)"), h("pre", { class: "json", text: JSON.stringify(item, null, 2) }));
  return parts;
}

// ------------------------------------------------------------------------------------- render

function setCount(id, items) {
  const el = document.getElementById(id);
  const bad = items.filter((i) => i.status === "disabled" || i.status === "expired").length;
  el.textContent = items.length ? String(items.length) : "";
  el.classList.toggle("bad", bad > 0);
  el.title = bad ? `${bad} with errors` : "";
}

function renderChrome(route) {
  for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.dataset.tab === route.view);
  setCount("count-routers", state.routers);
  setCount("count-services", state.services);
  setCount("count-middlewares", state.middlewares);
  setCount("count-certificates", state.certificates);
  if (state.version) {
    const name = state.version.dashboardName;
    document.getElementById("brand-name").textContent = name ? `ferryman · ${name}` : "ferryman";
    document.getElementById("brand-version").textContent = `v${state.version.Version}`;
    document.title = name ? `${name} — ferryman` : "ferryman dashboard";
  }
  const banner = document.getElementById("banner");
  banner.hidden = !state.error;
  banner.textContent = state.error;
  updateLive();
}

function updateLive() {
  const dot = document.getElementById("live-dot");
  dot.className = `live-dot ${state.error ? "off" : state.updated ? "on" : ""}`;
  const text = state.updated ? `updated ${agoText(Date.now() - state.updated)}` : "connecting…";
  document.getElementById("live-text").textContent = ui.interval ? text : `${text} · paused`;
  document.body.dataset.updated = String(state.updated);
}

function render() {
  const route = currentRoute();
  renderChrome(route);
  const main = document.getElementById("main");
  // keep the search box (and its caret) when the same list is re-rendered
  const focused = document.activeElement?.dataset?.search;
  let view;
  if (route.name) view = renderDetail(route.view, route.name);
  else if (route.view === "routers") view = renderRouters();
  else if (route.view === "services") view = renderServices();
  else if (route.view === "middlewares") view = renderMiddlewares();
  else if (route.view === "certificates") view = renderCertificates();
  else if (route.view === "entrypoints") view = renderEntryPoints();
  else view = renderOverview();
  const scroll = window.scrollY;
  main.replaceChildren(...[view].flat(3).filter(Boolean));
  window.scrollTo(0, scroll);
  if (focused) {
    const input = main.querySelector(`[data-search="${focused}"]`);
    if (input) { input.focus(); input.setSelectionRange(input.value.length, input.value.length); }
  }
}

// ---------------------------------------------------------------------------------------- start

const intervalSelect = document.getElementById("interval");
const saved = Number(window.localStorage?.getItem("ferryman.interval"));
if ([0, 1000, 2000, 5000, 15000].includes(saved) && window.localStorage.getItem("ferryman.interval") !== null) {
  ui.interval = saved;
  intervalSelect.value = String(saved);
}
intervalSelect.addEventListener("change", () => {
  ui.interval = Number(intervalSelect.value);
  window.localStorage?.setItem("ferryman.interval", String(ui.interval));
  updateLive();
  if (ui.interval) refresh().then(schedule); else clearTimeout(ui.timer);
});
window.addEventListener("hashchange", () => { render(); window.scrollTo(0, 0); });
document.addEventListener("visibilitychange", () => { if (!document.hidden && ui.interval) refresh(); });
setInterval(updateLive, 1000);
render();
refresh().then(schedule);
