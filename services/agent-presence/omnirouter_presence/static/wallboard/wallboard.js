// The supervisor wallboard: polls GET /v1/wallboard (routing's queue statistics, proxied by presence, and
// presence's agents by state) every two seconds with the admin token kept in this tab only.
"use strict";

const $ = (sel) => document.querySelector(sel);
const STATES = ["available", "busy", "wrapup", "away", "offline"];
let token = sessionStorage.getItem("omni.admin");
let timer = null;

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function duration(seconds) {
  if (seconds == null) return "–";
  const s = Math.round(seconds);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

function percent(x) { return x == null ? "–" : `${Math.round(x * 100)} %`; }

// Routing answers either one domain's statistics or one entry per routing domain.
function queuesOf(routing) {
  if (!routing) return [];
  if (Array.isArray(routing.queues)) return routing.queues.map((q) => ({ ...q, domain: routing.routing_domain }));
  const domains = routing.domains || {};
  return Object.entries(domains).flatMap(([domain, stats]) => (stats.queues || []).map((q) => ({ ...q, domain })));
}

function render(data) {
  const tiles = $("#tiles");
  tiles.replaceChildren();
  const queues = queuesOf(data.routing);
  const waiting = queues.reduce((n, q) => n + (q.waiting || 0), 0);
  const oldest = queues.reduce((m, q) => Math.max(m, q.oldest_wait || 0), 0);
  // Overall service level: each queue weighted by its outcomes (answered + abandoned).
  const outcomes = queues.reduce((n, q) => n + (q.answered || 0) + (q.abandoned || 0), 0);
  const within = queues.reduce((n, q) => n + (q.service_level || 0) * ((q.answered || 0) + (q.abandoned || 0)), 0);
  const entries = [["Waiting", waiting, "waiting"], ["Oldest wait", duration(oldest), "oldest"],
    ["Service level", outcomes ? percent(within / outcomes) : "–", "service-level"],
    ...STATES.map((s) => [s[0].toUpperCase() + s.slice(1), data.agents_by_state[s] || 0, `agents-${s}`])];
  for (const [label, value, key] of entries) {
    const tile = document.createElement("div");
    tile.className = "tile";
    tile.dataset.tile = key;
    const big = document.createElement("div"); big.className = "big"; big.textContent = value;
    const small = document.createElement("div"); small.className = "muted"; small.textContent = label;
    tile.append(big, small);
    tiles.appendChild(tile);
  }
  const err = $("#routing-error");
  err.classList.toggle("hidden", !data.routing_error);
  err.textContent = data.routing_error ? `Queue statistics unavailable: ${data.routing_error}` : "";

  const qbody = $("#queues tbody");
  qbody.replaceChildren();
  for (const q of queues) {
    const tr = document.createElement("tr");
    tr.dataset.queue = q.queue || q.name;
    cell(tr, (q.domain && q.domain !== "default" ? `${q.domain} / ` : "") + (q.queue || q.name));
    cell(tr, q.waiting ?? 0, "waiting");
    cell(tr, duration(q.oldest_wait), "oldest");
    cell(tr, q.offered ?? 0);
    cell(tr, q.assigned ?? 0);
    cell(tr, percent(q.service_level) + (q.service_level_threshold ? ` in ${q.service_level_threshold} s` : ""), "service-level");
    cell(tr, q.answered ?? 0);
    cell(tr, q.abandoned ?? 0);
    qbody.appendChild(tr);
  }
  const abody = $("#agents tbody");
  abody.replaceChildren();
  for (const a of data.agents) {
    const tr = document.createElement("tr");
    tr.dataset.agent = a.id;
    cell(tr, `${a.name} (${a.id})${a.kind === "bot" ? " · bot" : ""}${a.enabled ? "" : " · disabled"}`);
    const st = cell(tr, "");
    const pill = document.createElement("span");
    pill.className = `pill ${a.state}`;
    pill.textContent = a.state + (a.reason ? ` · ${a.reason}` : "");
    st.appendChild(pill);
    cell(tr, new Date(a.since).toLocaleTimeString());
    cell(tr, Object.entries(a.capacity).map(([ch, cap]) => `${ch} ${a.load[ch] || 0}/${cap}`).join(", "));
    cell(tr, (a.teams || []).join(", "));
    abody.appendChild(tr);
  }
  $("#updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

async function refresh() {
  try {
    const r = await fetch("/v1/wallboard", { headers: { Authorization: `Bearer ${token}` } });
    const body = await r.json().catch(() => ({}));
    if (r.status === 401 || r.status === 403) { signOut(body.reason || "not allowed"); return; }
    if (!r.ok) { $("#updated").textContent = body.reason || `error ${r.status}`; return; }
    render(body);
  } catch (e) {
    $("#updated").textContent = "presence unreachable; retrying";
  }
}

function start() {
  $("#signin").classList.add("hidden");
  $("#board").classList.remove("hidden");
  $("#sign-out").classList.remove("hidden");
  refresh();
  clearInterval(timer);
  timer = setInterval(refresh, 2000);
}

function signOut(reason) {
  clearInterval(timer);
  token = null;
  sessionStorage.removeItem("omni.admin");
  $("#signin").classList.remove("hidden");
  $("#board").classList.add("hidden");
  $("#sign-out").classList.add("hidden");
  $("#signin-error").textContent = typeof reason === "string" ? reason : "";
}

$("#signin").addEventListener("submit", (e) => {
  e.preventDefault();
  token = $("#admin-token").value.trim();
  sessionStorage.setItem("omni.admin", token);
  start();
});
$("#sign-out").onclick = () => signOut();
if (token) start();
