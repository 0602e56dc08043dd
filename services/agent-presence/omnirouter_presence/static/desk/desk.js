// The reference agent desktop: one WebSocket (GET /v1/agents/{id}/ws?token=...), reconnecting with
// backoff and resuming (the server re-sends live offers and assigned conversations on every connect).
// Customer text is only ever inserted with textContent.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const session = { agentId: null, token: null, ws: null, retry: 0, heartbeat: null, refs: 0, closing: false };
const offers = new Map();   // offer_id -> offer frame
const tasks = new Map();    // task_id -> {task, state, sent: [texts]}
const pending = new Map();  // ref -> callback(ack or error)

function toast(text) {
  const el = document.createElement("div");
  el.textContent = text;
  $("#toast").appendChild(el);
  setTimeout(() => el.remove(), 5000);
}

function send(frame, onAnswer) {
  if (!session.ws || session.ws.readyState !== WebSocket.OPEN) { toast("Not connected; retrying…"); return; }
  const ref = `r${++session.refs}`;
  if (onAnswer) pending.set(ref, onAnswer);
  session.ws.send(JSON.stringify({ ...frame, ref }));
}

function setState(frame) {
  const pill = $("#state");
  pill.className = `pill ${frame.state}`;
  pill.textContent = frame.state + (frame.reason ? ` · ${frame.reason}` : "");
  pill.dataset.state = frame.state;
}

function when(iso) {
  try { return new Date(iso).toLocaleString(); } catch { return iso; }
}

// The customer's messages and the agent's replies (kept with the task by the server), in time order.
function renderMessages(container, task, sent) {
  container.replaceChildren();
  const items = [
    ...(task.messages || []).map((m) => ({ at: m.received_at, out: false, subject: m.subject, text: m.text || "(attachment)" })),
    ...(task.replies || []).map((r) => ({ at: r.sent_at, out: true, subject: r.subject, text: r.text, id: r.reply_id })),
  ];
  const known = new Set(items.filter((i) => i.id).map((i) => i.id));
  for (const s of sent || []) if (!known.has(s.id)) items.push({ at: s.at, out: true, text: s.text });
  items.sort((a, b) => new Date(a.at) - new Date(b.at));
  for (const item of items) {
    const div = document.createElement("div");
    div.className = item.out ? "msg out" : "msg";
    div.textContent = (item.subject ? `${item.subject}: ` : "") + item.text;
    div.title = when(item.at);
    container.appendChild(div);
  }
}

function renderHistory(list, items) {
  list.replaceChildren();
  if (!items || !items.length) {
    const li = document.createElement("li"); li.className = "muted"; li.textContent = "No earlier contact.";
    list.appendChild(li); return;
  }
  for (const h of items) {
    const li = document.createElement("li");
    const channel = h.channel ? `[${h.channel}] ` : "";
    li.textContent = `${when(h.occurred_at)} ${channel}${h.direction || ""} ${h.kind || ""}: ${h.summary || JSON.stringify(h)}`;
    list.appendChild(li);
  }
}

async function loadTimeline(taskId, list) {
  const r = await fetch(`/v1/agents/${encodeURIComponent(session.agentId)}/tasks/${encodeURIComponent(taskId)}/customer`,
    { headers: { Authorization: `Bearer ${session.token}` } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) { toast(body.reason || `timeline unavailable (${r.status})`); return; }
  renderHistory(list, body.items || body.timeline || body.entries || []);
}

function render() {
  const offersEl = $("#offers");
  offersEl.replaceChildren();
  if (!offers.size) offersEl.appendChild(Object.assign(document.createElement("p"), { className: "muted", textContent: "No offers right now." }));
  for (const offer of offers.values()) {
    const node = $("#offer-tpl").content.firstElementChild.cloneNode(true);
    const t = offer.task;
    node.dataset.offerId = offer.offer_id;
    node.dataset.taskId = t.id;
    $(".customer", node).textContent = t.customer_name || t.customer_id;
    $(".channel", node).textContent = t.channel;
    $(".queue", node).textContent = `${t.queue}${t.intent ? " · " + t.intent : ""}`;
    $(".countdown", node).dataset.expires = offer.expires_at;
    renderMessages($(".messages", node), t);
    renderHistory($(".history", node), t.history);
    $(".more-history", node).onclick = () => loadTimeline(t.id, $(".history", node));
    $(".accept", node).onclick = (e) => {
      e.target.disabled = true;
      send({ type: "accept", offer_id: offer.offer_id, task_id: t.id }, (a) => { if (a.type === "error") e.target.disabled = false; });
    };
    $(".reject", node).onclick = () => send({ type: "reject", offer_id: offer.offer_id, task_id: t.id }, (a) => {
      if (a.type === "ack") { offers.delete(offer.offer_id); render(); }
    });
    offersEl.appendChild(node);
  }
  const tasksEl = $("#tasks");
  tasksEl.replaceChildren();
  if (!tasks.size) tasksEl.appendChild(Object.assign(document.createElement("p"), { className: "muted", textContent: "No conversations." }));
  for (const [taskId, entry] of tasks) {
    const node = $("#task-tpl").content.firstElementChild.cloneNode(true);
    const t = entry.task;
    node.dataset.taskId = taskId;
    $(".customer", node).textContent = t.customer_name || t.customer_id;
    $(".channel", node).textContent = t.channel;
    $(".task-state", node).textContent = entry.state;
    renderMessages($(".messages", node), t, entry.sent);
    renderHistory($(".history", node), t.history);
    $(".more-history", node).onclick = () => loadTimeline(taskId, $(".history", node));
    const wrapping = entry.state === "wrapup";
    $(".complete", node).classList.toggle("hidden", wrapping);
    $(".wrapup-done", node).classList.toggle("hidden", !wrapping);
    $(".send-reply", node).onclick = () => {
      const text = $(".reply-text", node).value.trim();
      if (!text) return;
      const replyId = (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`);
      send({ type: "reply", task_id: taskId, text, reply_id: replyId }, (a) => {
        if (a.type === "ack") {
          entry.sent = [...(entry.sent || []), { id: replyId, text, at: new Date().toISOString() }];
          render();
        }
      });
    };
    $(".complete", node).onclick = () => send({ type: "complete", task_id: taskId }, (a) => {
      if (a.type === "ack") { entry.state = a.state; if (a.state === "done") tasks.delete(taskId); render(); }
    });
    $(".wrapup-done", node).onclick = () => send({ type: "wrapup_done", task_id: taskId }, (a) => {
      if (a.type === "ack") { tasks.delete(taskId); render(); }
    });
    $(".transfer", node).onclick = () => {
      const queue = $(".transfer-queue", node).value.trim();
      if (!queue) { toast("Name a queue to transfer to"); return; }
      send({ type: "transfer", task_id: taskId, to_queue: queue }, (a) => {
        if (a.type === "ack") { tasks.delete(taskId); render(); }
      });
    };
    tasksEl.appendChild(node);
  }
  tickCountdowns();
}

function onFrame(frame) {
  if (frame.ref && pending.has(frame.ref) && (frame.type === "ack" || frame.type === "error")) {
    const cb = pending.get(frame.ref); pending.delete(frame.ref); cb(frame);
  }
  switch (frame.type) {
    case "state":
      if (frame.snapshot) { offers.clear(); tasks.clear(); startHeartbeat(frame.heartbeat_interval_s); }
      setState(frame); break;
    case "offer": offers.set(frame.offer_id, frame); break;
    case "rescind": offers.delete(frame.offer_id); toast(`Offer withdrawn (${frame.reason})`); break;
    case "assigned":
      for (const [id, o] of offers) if (o.task.id === frame.task_id) offers.delete(id);
      tasks.set(frame.task_id, { task: frame.task, state: frame.state || "assigned", sent: tasks.get(frame.task_id)?.sent });
      break;
    case "message": {
      const entry = tasks.get(frame.task_id);
      if (entry) entry.task = { ...entry.task, messages: [...(entry.task.messages || []), frame.message] };
      break;
    }
    case "closed": tasks.delete(frame.task_id); toast(`Conversation closed (${frame.reason})`); break;
    case "state_forced": toast(`Routing set you ${frame.status}: ${frame.reason}`); break;
    case "error": toast(`${frame.error}: ${frame.reason}`); if (frame.error === "agent_disabled") signOut(); break;
    default: return;
  }
  render();
}

function startHeartbeat(seconds) {
  clearInterval(session.heartbeat);
  session.heartbeat = setInterval(() => send({ type: "heartbeat" }), Math.max(1, seconds || 10) * 1000);
}

function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const url = `${proto}://${location.host}/v1/agents/${encodeURIComponent(session.agentId)}/ws?token=${encodeURIComponent(session.token)}`;
  const ws = new WebSocket(url);
  session.ws = ws;
  $("#conn").textContent = "connecting…";
  ws.onopen = () => { session.retry = 0; $("#conn").textContent = "connected"; };
  ws.onmessage = (e) => { try { onFrame(JSON.parse(e.data)); } catch (err) { console.error(err); } };
  ws.onclose = (e) => {
    clearInterval(session.heartbeat);
    if (session.closing) return;
    if (e.code === 4001) { toast("Signed out by the server"); signOut(); return; }
    const delay = Math.min(10000, 500 * 2 ** session.retry++);
    $("#conn").textContent = `disconnected; retrying in ${Math.round(delay / 1000)} s`;
    setTimeout(connect, delay);
  };
}

async function signIn(agentId, token) {
  const r = await fetch(`/v1/agents/${encodeURIComponent(agentId)}/state`, { headers: { Authorization: `Bearer ${token}` } });
  if (!r.ok) {
    const body = await r.json().catch(() => ({}));
    $("#signin-error").textContent = body.reason || `sign-in failed (${r.status})`;
    return;
  }
  session.agentId = agentId; session.token = token; session.closing = false;
  sessionStorage.setItem("omni.agent", JSON.stringify({ agentId, token }));
  $("#who").textContent = agentId;
  $("#signin").classList.add("hidden");
  $("#desk").classList.remove("hidden");
  $("#status-controls").classList.remove("hidden");
  connect();
}

function signOut() {
  session.closing = true;
  sessionStorage.removeItem("omni.agent");
  if (session.ws) session.ws.close();
  offers.clear(); tasks.clear(); render();
  $("#signin").classList.remove("hidden");
  $("#desk").classList.add("hidden");
  $("#status-controls").classList.add("hidden");
  $("#state").className = "pill offline"; $("#state").textContent = "signed out"; $("#conn").textContent = "";
}

function tickCountdowns() {
  for (const el of document.querySelectorAll(".countdown[data-expires]")) {
    const left = Math.max(0, Math.round((new Date(el.dataset.expires) - Date.now()) / 1000));
    el.textContent = `${left} s to answer`;
  }
}
setInterval(tickCountdowns, 500);

$("#signin").addEventListener("submit", (e) => { e.preventDefault(); signIn($("#agent-id").value.trim(), $("#token").value.trim()); });
$("#go-available").onclick = () => send({ type: "status", status: "available" });
$("#go-away").onclick = () => send({ type: "status", status: "away", reason: $("#away-reason").value });
$("#go-offline").onclick = () => send({ type: "status", status: "offline" });
$("#sign-out").onclick = signOut;

const saved = JSON.parse(sessionStorage.getItem("omni.agent") || "null");
if (saved) signIn(saved.agentId, saved.token);
