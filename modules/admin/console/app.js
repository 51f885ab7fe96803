// The admin console: sign in over REST, then everything live over the admin's socket.
import { io } from "/admin/vendor/socket.io.esm.min.js";
import { ApiError, createApi, explain } from "/admin/api.js";
import { h, say, shortId, summary, when } from "/admin/dom.js";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "marketplace-admin-token";
const USER_KEY = "marketplace-admin-user";
const FEED_MAX = 200;
const REFRESH_MS = 5000;
const TICK_MS = 1000;

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  user: readUser(),
  socket: null,
  lastEventId: null,
  timer: null,
  /** The countdowns of the delivered requests, every second. */
  ticker: null,
  /** dispute id → { dispute, request, sellerId, evidence: Map, el } */
  disputes: new Map(),
  /** request id → the delivered request shown (waiting for its automatic completion) */
  delivered: new Map(),
};

function readUser() {
  try {
    return JSON.parse(sessionStorage.getItem(USER_KEY) || "null");
  } catch {
    return null;
  }
}

const api = createApi({
  token: () => state.token,
  onUnauthorized: () => signOut("Your session has expired. Sign in again."),
});

// ---------------------------------------------------------------- sign in / out

function showLogin(message) {
  $("app-view").hidden = true;
  $("session").hidden = true;
  $("login-view").hidden = false;
  say($("login-error"), message);
  $("login-email").focus();
}

async function onLogin(ev) {
  ev.preventDefault();
  const email = $("login-email").value.trim();
  const password = $("login-password").value;
  if (!email || !password) {
    say($("login-error"), "Enter the email and the password of an admin account.");
    return;
  }
  const button = $("login-submit");
  button.disabled = true;
  say($("login-error"), "");
  try {
    const res = await api.post("/api/auth/login", { email, password });
    if (res?.user?.role !== "admin") {
      say(
        $("login-error"),
        `This account is a ${res?.user?.role || "non-admin"} account. The console is for admins only: nothing is shown.`,
      );
      return;
    }
    state.token = res.token;
    state.user = res.user;
    sessionStorage.setItem(TOKEN_KEY, res.token);
    sessionStorage.setItem(USER_KEY, JSON.stringify(res.user));
    $("login-password").value = "";
    start();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) say($("login-error"), "Wrong email or password.");
    else if (err instanceof ApiError && err.status === 429)
      say($("login-error"), `Too many failed attempts. Try again in ${err.retryAfter || "a few"} seconds.`);
    else say($("login-error"), explain(err));
  } finally {
    button.disabled = false;
  }
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(USER_KEY);
  state.token = null;
  state.user = null;
  state.lastEventId = null;
  if (state.socket) {
    state.socket.removeAllListeners();
    state.socket.disconnect();
    state.socket = null;
  }
  clearInterval(state.timer);
  state.timer = null;
  clearInterval(state.ticker);
  state.ticker = null;
  state.disputes.clear();
  state.delivered.clear();
  $("disputes").replaceChildren();
  $("feed").replaceChildren();
  for (const id of ["attention", "delivered", "dead", "jobs", "delivery", "nodes", "subscribers"]) $(id).replaceChildren();
  showLogin(message);
}

// ---------------------------------------------------------------- live socket

function setLive(stateName, text) {
  const pill = $("live");
  pill.dataset.state = stateName;
  pill.textContent = text;
}

function connect() {
  const socket = io(window.location.origin, {
    // Called on every (re)connection: after a drop the server replays what was missed.
    auth: (cb) => cb(state.lastEventId ? { token: state.token, lastEventId: state.lastEventId } : { token: state.token }),
  });
  state.socket = socket;
  socket.on("connect", () => {
    setLive("live", "Live");
    loadDisputes();
    refreshSystem();
    // Rooms are per connection: follow the delivered requests again after a reconnect.
    for (const id of state.delivered.keys()) socket.emit("join-request-room", id, () => {});
    refreshDelivered();
  });
  socket.on("disconnect", (reason) => {
    setLive("down", reason === "io client disconnect" ? "Offline" : "Reconnecting…");
  });
  socket.on("connect_error", (err) => {
    if (String(err?.message || "").includes("unauthorized")) {
      signOut("Your session has expired. Sign in again.");
      return;
    }
    setLive("down", "Reconnecting…");
  });
  socket.onAny((event, payload, meta) => {
    if (meta && typeof meta.id === "number") state.lastEventId = Math.max(state.lastEventId || 0, meta.id);
    addToFeed(event, payload, meta);
    onEvent(event, payload);
  });
}

function onEvent(event, payload) {
  switch (event) {
    case "dispute:opened":
      addDispute(payload);
      break;
    case "dispute:evidence-added": {
      const entry = state.disputes.get(payload?.disputeId);
      if (entry && payload.evidence) {
        entry.evidence.set(payload.evidence.id, payload.evidence);
        renderEvidence(entry);
      }
      break;
    }
    case "dispute:resolved":
      removeDispute(payload?.disputeId);
      break;
    case "request:status-updated":
      for (const entry of state.disputes.values()) {
        if (entry.dispute.requestId === payload?.requestId && entry.request) {
          entry.request.status = payload.status;
          renderHeader(entry);
        }
      }
      // A delivered request that was completed (by its buyer or by itself) or disputed leaves
      // the list at once; a new delivery is picked up by the next refresh.
      if (state.delivered.has(payload?.requestId) && payload.status !== "delivered") {
        removeDelivered(payload.requestId);
      } else if (payload?.status === "delivered") {
        refreshDelivered();
      }
      break;
    case "payout:failed":
    case "payout:created":
    case "payout:completed":
    case "payment:completed":
      refreshMoney();
      break;
    default:
      break;
  }
}

// ---------------------------------------------------------------- feed

function addToFeed(event, payload, meta) {
  const list = $("feed");
  const at = meta?.at || new Date().toISOString();
  const item = h(
    "li",
    { class: "feed-item", data: { event } },
    h("div", { class: "feed-line" },
      h("span", { class: `tag tag-${event.split(":")[0]}`, text: event }),
      when(at, true),
      meta?.id ? h("span", { class: "muted small", text: `#${meta.id}` }) : null),
    h("div", { class: "feed-body", text: summary(payload) }),
  );
  list.prepend(item);
  while (list.children.length > FEED_MAX) list.lastElementChild.remove();
  $("feed-empty").hidden = list.children.length > 0;
}

// ---------------------------------------------------------------- disputes

async function loadDisputes() {
  say($("disputes-error"), "");
  try {
    const open = await api.all("/api/disputes?status=open&limit=100");
    const seen = new Set(open.map((d) => d.id));
    for (const id of [...state.disputes.keys()]) if (!seen.has(id)) removeDispute(id);
    await Promise.all(open.map((d) => addDispute(d)));
  } catch (err) {
    say($("disputes-error"), `Cannot load the open disputes: ${explain(err)}`);
  }
  updateDisputeCount();
}

async function addDispute(dispute) {
  if (!dispute?.id || dispute.status === "resolved") return;
  let entry = state.disputes.get(dispute.id);
  if (!entry) {
    entry = { dispute, request: null, sellerId: null, price: null, evidence: new Map(), el: null };
    state.disputes.set(dispute.id, entry);
    entry.el = disputeCard(entry);
    $("disputes").prepend(entry.el);
    updateDisputeCount();
    // Follow the request too: its status and payment events reach this socket and the feed.
    state.socket?.emit("join-request-room", dispute.requestId, () => {});
  }
  const [detail, request, offers] = await Promise.allSettled([
    api.get(`/api/disputes/${dispute.id}`),
    api.get(`/api/requests/${dispute.requestId}`),
    api.get(`/api/requests/${dispute.requestId}/offers?limit=100`),
  ]);
  if (!state.disputes.has(dispute.id)) return;
  if (detail.status === "fulfilled") {
    for (const e of detail.value?.evidence || []) entry.evidence.set(e.id, e);
  }
  if (request.status === "fulfilled") entry.request = request.value;
  if (offers.status === "fulfilled") {
    const accepted = (offers.value?.items || []).find((o) => o.status === "accepted");
    if (accepted) {
      entry.sellerId = accepted.sellerId;
      entry.price = accepted.price;
    }
  }
  renderHeader(entry);
  renderEvidence(entry);
}

function removeDispute(id) {
  const entry = state.disputes.get(id);
  if (!entry) return;
  state.disputes.delete(id);
  const wasFocused = entry.el.contains(document.activeElement);
  entry.el.remove();
  updateDisputeCount();
  if (wasFocused) $("disputes-title").focus?.();
}

function updateDisputeCount() {
  $("disputes-count").textContent = String(state.disputes.size);
  $("disputes-empty").hidden = state.disputes.size > 0;
}

function role(entry, userId) {
  if (!userId) return "someone";
  if (entry.request && userId === entry.request.buyerId) return "the buyer";
  if (userId === entry.sellerId) return "the seller";
  return "an admin";
}

function disputeCard(entry) {
  const id = entry.dispute.id;
  const resolution = `resolution-${id}`;
  const noteId = `note-${id}`;
  const error = h("p", { class: "alert", role: "alert", hidden: true });
  const form = h(
    "form",
    { class: "resolve", novalidate: true },
    h("fieldset", {},
      h("legend", { text: "Resolve" }),
      h("label", { class: "choice" },
        h("input", { type: "radio", name: resolution, value: "release_to_seller", checked: true }),
        " Release to the seller"),
      h("label", { class: "choice" },
        h("input", { type: "radio", name: resolution, value: "refund_buyer" }),
        " Refund the buyer")),
    h("label", { for: noteId, text: "Note (kept with the decision, sent to both parties)" }),
    h("textarea", { id: noteId, name: "note", rows: 2, maxlength: 2000, required: true }),
    error,
    h("button", { type: "submit", text: "Resolve dispute" }),
  );
  form.addEventListener("submit", (ev) => resolve(ev, entry, form, error));
  return h(
    "li",
    { class: "card dispute", data: { disputeId: id }, "aria-labelledby": `title-${id}` },
    h("div", { class: "dispute-head" }),
    h("blockquote", { class: "reason", text: entry.dispute.reason }),
    h("h4", { text: "Evidence" }),
    h("ol", { class: "evidence" }),
    form,
  );
}

function renderHeader(entry) {
  const d = entry.dispute;
  const r = entry.request;
  const head = entry.el.querySelector(".dispute-head");
  const price = entry.price ? `${entry.price.amount} ${entry.price.currency}` : null;
  head.replaceChildren(
    h("h3", { id: `title-${d.id}`, text: r?.title || "Request" }),
    h("div", { class: "meta" },
      r ? h("span", { class: `badge badge-${r.status}`, text: r.status, data: { requestStatus: r.status } }) : null,
      price ? h("span", { class: "price", text: price }) : null,
      h("span", {}, "opened ", when(d.createdAt), ` by ${role(entry, d.openedBy)}`)),
    h("dl", { class: "parties" },
      h("dt", { text: "Request" }), h("dd", {}, shortId(d.requestId)),
      h("dt", { text: "Buyer" }), h("dd", {}, r ? shortId(r.buyerId) : "…"),
      h("dt", { text: "Seller" }), h("dd", {}, entry.sellerId ? shortId(entry.sellerId) : "…"),
      h("dt", { text: "Dispute" }), h("dd", {}, shortId(d.id))),
  );
}

function renderEvidence(entry) {
  const list = entry.el.querySelector(".evidence");
  const items = [...entry.evidence.values()].sort((a, b) => String(a.createdAt).localeCompare(String(b.createdAt)));
  if (items.length === 0) {
    list.replaceChildren(h("li", { class: "empty", text: "No evidence yet. It appears here as soon as a party adds some." }));
    return;
  }
  list.replaceChildren(
    ...items.map((e) =>
      h("li", { class: "evidence-item", data: { evidenceId: e.id } },
        h("div", { class: "meta" }, h("strong", { text: role(entry, e.authorId) }), " · ", when(e.createdAt)),
        h("p", { text: e.description }),
        e.attachmentUrl
          ? h("a", { href: e.attachmentUrl, target: "_blank", rel: "noopener noreferrer", text: e.attachmentUrl })
          : null,
        (e.attachments || []).length
          ? h("ul", { class: "evidence-files" }, ...e.attachments.map(evidenceFile))
          : null)),
  );
}

/** Bytes in a short human form. */
function size(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/**
 * One evidence file: an image as its thumbnail (opening the full image), any other file as a
 * link, with its name, size and SHA-256 (what proves it unchanged). Links are valid for 10
 * minutes; one that has expired is fetched afresh when clicked or when its thumbnail fails.
 */
function evidenceFile(a) {
  const link = h("a", { href: a.url, target: "_blank", rel: "noopener noreferrer", class: "file-link" });
  async function fresh() {
    try {
      const now = await api.get(`/api/attachments/${a.id}`);
      a.url = now.url;
      a.thumbnailUrl = now.thumbnailUrl;
      link.href = now.url;
      return now;
    } catch {
      return null;
    }
  }
  link.addEventListener("click", async (ev) => {
    const expires = Number(new URL(a.url, location.href).searchParams.get("expires") || 0);
    const amzDate = new URL(a.url, location.href).searchParams.get("X-Amz-Date");
    const stale = expires ? expires * 1000 < Date.now() + 5000 : Boolean(amzDate);
    if (!stale) return;
    ev.preventDefault();
    const now = await fresh();
    if (now) window.open(now.url, "_blank", "noopener,noreferrer");
  });
  if (a.thumbnailUrl) {
    let retried = false;
    const img = h("img", { src: a.thumbnailUrl, alt: a.name, class: "thumb", loading: "lazy", referrerpolicy: "no-referrer" });
    img.addEventListener("error", async () => {
      if (retried) return;
      retried = true;
      const now = await fresh();
      if (now?.thumbnailUrl) img.src = now.thumbnailUrl;
    });
    link.append(img);
  } else {
    link.append(h("span", { class: "file-icon", text: a.contentType === "application/pdf" ? "PDF" : "FILE" }));
  }
  return h("li", { class: "evidence-file", data: { attachmentId: a.id } },
    link,
    h("div", { class: "file-meta" },
      h("span", { class: "file-name", text: a.name }),
      h("span", { class: "muted", text: ` · ${a.contentType} · ${size(a.size)}` }),
      a.width && a.height ? h("span", { class: "muted", text: ` · ${a.width}×${a.height}` }) : null,
      h("code", { class: "sha", title: "SHA-256 of the stored bytes", text: `sha256 ${a.sha256}` })));
}

async function resolve(ev, entry, form, error) {
  ev.preventDefault();
  const resolution = form.querySelector("input[type=radio]:checked")?.value;
  const note = form.querySelector("textarea").value.trim();
  if (!note) {
    say(error, "Write a note: it explains the decision to both parties.");
    form.querySelector("textarea").focus();
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  say(error, "");
  try {
    await api.post(`/api/disputes/${entry.dispute.id}/resolve`, { resolution, note });
    removeDispute(entry.dispute.id);
  } catch (err) {
    say(error, `Not resolved: ${explain(err)}`);
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- money, dead letters, system

const ACTION_LABEL = { retry_payout: "Retry payout", refund_payment: "Refund the buyer" };
const KIND_LABEL = {
  payout_failed: "Payout failed",
  paid_after_cancel: "Paid after cancel",
  underpaid_callback: "Provider said paid, but short",
  other_currency_callback: "Provider said paid, other currency",
};

async function refreshMoney() {
  try {
    const items = await api.all("/api/admin/attention?limit=100", 3);
    say($("attention-error"), "");
    $("attention").replaceChildren(...items.map(attentionRow));
    $("attention-count").textContent = String(items.length);
    $("attention-empty").hidden = items.length > 0;
  } catch (err) {
    $("attention-empty").hidden = true;
    say($("attention-error"), err.status === 404 ? "This server has no money-attention endpoint yet." : `Cannot load: ${explain(err)}`);
  }
}

function attentionRow(item) {
  const error = h("p", { class: "alert", role: "alert", hidden: true });
  const amount = item.payout ? `${item.payout.amount} ${item.payout.crypto}` : item.payment ? `${item.payment.amount?.amount ?? ""} ${item.payment.amount?.currency ?? ""}` : "";
  // Callbacks that claimed more than they paid have no action here: they are settled with
  // the provider and the buyer.
  const button = item.actionPath ? h("button", { type: "button", class: "small", text: ACTION_LABEL[item.action] || item.action }) : null;
  button?.addEventListener("click", async () => {
    button.disabled = true;
    say(error, "");
    try {
      await api.post(item.actionPath);
      await refreshMoney();
    } catch (err) {
      say(error, explain(err));
      button.disabled = false;
    }
  });
  return h("li", { class: "row", data: { attentionId: item.id } },
    h("div", { class: "row-main" },
      h("strong", { text: KIND_LABEL[item.kind] || item.kind }), " ", h("span", { class: "muted", text: amount.trim() }),
      h("div", { class: "small" }, item.reason),
      h("div", { class: "muted small" }, "request ", shortId(item.requestId), " · since ", when(item.since)),
      item.blockedBy ? h("div", { class: "warn small", text: `Blocked: ${explain(new ApiError(409, { code: item.blockedBy, detail: item.blockedBy }))}` }) : null,
      error),
    button);
}

// ---------------------------------------------------------------- delivered requests

/** "in 3 d 4 h", "in 12 min 5 s", "due now": how long until `iso`. */
function countdown(iso) {
  const ms = new Date(iso).getTime() - Date.now();
  if (Number.isNaN(ms)) return "";
  if (ms <= 0) return "due now";
  const s = Math.floor(ms / 1000);
  const [d, h, m, sec] = [Math.floor(s / 86400), Math.floor((s % 86400) / 3600), Math.floor((s % 3600) / 60), s % 60];
  if (d > 0) return `in ${d} d ${h} h`;
  if (h > 0) return `in ${h} h ${m} min`;
  if (m > 0) return `in ${m} min ${sec} s`;
  return `in ${sec} s`;
}

function tickCountdowns() {
  for (const el of $("delivered").querySelectorAll("[data-countdown]")) el.textContent = countdown(el.dataset.countdown);
}

async function refreshDelivered() {
  try {
    const items = await api.all("/api/requests?status=delivered&limit=100", 3);
    say($("delivered-error"), "");
    // Soonest first: the next automatic completion (and payout) on top.
    items.sort((a, b) => String(a.autoCompleteAt).localeCompare(String(b.autoCompleteAt)));
    const seen = new Set(items.map((r) => r.id));
    for (const id of state.delivered.keys()) if (!seen.has(id)) state.delivered.delete(id);
    for (const r of items) {
      // Follow it: its completion or dispute reaches this socket (and the feed) at once.
      if (!state.delivered.has(r.id)) state.socket?.emit("join-request-room", r.id, () => {});
      state.delivered.set(r.id, r);
    }
    renderDelivered();
  } catch (err) {
    $("delivered-empty").hidden = true;
    say($("delivered-error"), `Cannot load the delivered requests: ${explain(err)}`);
  }
}

function removeDelivered(id) {
  // The request room stays joined: a dispute card may follow the same request.
  state.delivered.delete(id);
  renderDelivered();
}

function renderDelivered() {
  const items = [...state.delivered.values()];
  $("delivered").replaceChildren(...items.map(deliveredRow));
  $("delivered-count").textContent = String(items.length);
  $("delivered-empty").hidden = items.length > 0;
}

function deliveredRow(r) {
  return h("li", { class: "row", data: { deliveredId: r.id, autoCompleteAt: r.autoCompleteAt || "" } },
    h("div", { class: "row-main" },
      h("strong", { text: r.title || "Request" }), " ", shortId(r.id),
      h("div", { class: "small" },
        "completes by itself ", when(r.autoCompleteAt), " ",
        h("span", { class: "warn", data: { countdown: r.autoCompleteAt || "" }, text: r.autoCompleteAt ? countdown(r.autoCompleteAt) : "" })),
      h("div", { class: "muted small" }, "delivered ", when(r.deliveredAt), " · buyer ", shortId(r.buyerId))));
}

async function refreshDeadLetters() {
  try {
    const items = await api.all("/api/admin/dead-letters?status=open&limit=100", 3);
    say($("dead-error"), "");
    $("dead").replaceChildren(...items.map(deadRow));
    $("dead-count").textContent = String(items.length);
    $("dead-empty").hidden = items.length > 0;
  } catch (err) {
    $("dead-empty").hidden = true;
    say($("dead-error"), err.status === 404 ? "This server keeps no dead letters yet." : `Cannot load: ${explain(err)}`);
  }
}

function deadRow(d) {
  const error = h("p", { class: "alert", role: "alert", hidden: true });
  const button = h("button", { type: "button", class: "small", text: "Retry now" });
  button.addEventListener("click", async () => {
    button.disabled = true;
    say(error, "");
    try {
      const res = await api.post(`/api/admin/dead-letters/${d.id}/retry`);
      if (res?.outcome === "failed") say(error, `Failed again: ${res.error || "unknown error"}`);
      await refreshDeadLetters();
    } catch (err) {
      say(error, explain(err));
    } finally {
      button.disabled = false;
    }
  });
  return h("li", { class: "row", data: { deadLetterId: d.id } },
    h("div", { class: "row-main" },
      h("strong", { text: d.subscriber }), " ", h("span", { class: "tag", text: d.eventName }), h("span", { class: "muted small", text: ` #${d.eventId}` }),
      h("div", { class: "small mono", text: d.lastError }),
      h("div", { class: "muted small" }, `${d.attempts} attempts · last `, when(d.lastFailedAt), d.nextRetryAt ? " · next " : "", d.nextRetryAt ? when(d.nextRetryAt) : ""),
      error),
    button);
}

// Delayed jobs (email digests, ...) that still failed after their last attempt.
async function refreshFailedJobs() {
  try {
    const res = await api.get("/api/admin/failed-jobs");
    const items = res?.items || [];
    say($("jobs-error"), "");
    $("jobs").replaceChildren(...items.map(jobRow));
    $("jobs-count").textContent = String(items.length);
    $("jobs-empty").hidden = items.length > 0;
  } catch (err) {
    $("jobs-empty").hidden = true;
    say($("jobs-error"), err.status === 404 ? "This server keeps no failed jobs yet." : `Cannot load: ${explain(err)}`);
  }
}

function jobRow(j) {
  const error = h("p", { class: "alert", role: "alert", hidden: true });
  const button = h("button", { type: "button", class: "small", text: "Retry now" });
  button.addEventListener("click", async () => {
    button.disabled = true;
    say(error, "");
    try {
      await api.post(`/api/admin/failed-jobs/${j.id}/retry`);
      await refreshFailedJobs();
    } catch (err) {
      say(error, explain(err));
    } finally {
      button.disabled = false;
    }
  });
  const what = j.kind === "mail.digest" ? `email digest for user ${shortId(j.key)}` : j.key;
  return h("li", { class: "row", data: { failedJobId: j.id } },
    h("div", { class: "row-main" },
      h("span", { class: "tag", text: j.kind }), " ", h("span", { text: what }),
      h("div", { class: "small mono", text: j.lastError || "" }),
      h("div", { class: "muted small" }, `${j.attempts} attempts · failed `, j.failedAt ? when(j.failedAt) : ""),
      error),
    button);
}

// Emails refused or failing, and pushes given up or being retried.
async function refreshDeliveryFailures() {
  try {
    const [mail, push] = await Promise.all([
      api.all("/api/admin/mail-failures?limit=100", 1),
      api.all("/api/admin/push-failures?limit=100", 1),
    ]);
    const rows = [
      ...mail.map((m) => ({ at: m.createdAt, row: mailFailureRow(m) })),
      ...push.map((p) => ({ at: p.updatedAt, row: pushFailureRow(p) })),
    ].sort((a, b) => (a.at < b.at ? 1 : -1));
    say($("delivery-error"), "");
    $("delivery").replaceChildren(...rows.map((r) => r.row));
    $("delivery-count").textContent = String(rows.length);
    $("delivery-empty").hidden = rows.length > 0;
  } catch (err) {
    $("delivery-empty").hidden = true;
    say($("delivery-error"), `Cannot load: ${explain(err)}`);
  }
}

function mailFailureRow(m) {
  const what = m.state === "bounced" ? "refused for good: no more email to this address" : "failing; retried with growing pauses";
  return h("li", { class: "row", data: { mailFailureId: m.id } },
    h("div", { class: "row-main" },
      h("span", { class: "tag", text: `email ${m.state}` }), " ", m.email ? h("span", { text: m.email }) : h("span", {}, "user ", shortId(m.userId)),
      h("div", { class: "small mono", text: m.lastError || "" }),
      h("div", { class: "muted small" }, `${what} · ${m.attempts} attempts · `, when(m.createdAt))));
}

function pushFailureRow(p) {
  return h("li", { class: "row", data: { pushFailureId: p.id } },
    h("div", { class: "row-main" },
      h("span", { class: "tag", text: `push ${p.state}` }), " ", h("span", {}, "user ", shortId(p.userId), ` · ${p.endpointOrigin}`),
      h("div", { class: "small mono", text: p.lastError || "" }),
      h("div", { class: "muted small" }, `${p.attempts} attempts · `, when(p.updatedAt), p.nextAttemptAt ? " · next " : "", p.nextAttemptAt ? when(p.nextAttemptAt) : "")));
}

async function refreshSystem() {
  const [nodes, subs] = await Promise.allSettled([api.get("/api/admin/nodes"), api.get("/api/admin/subscribers")]);
  const failed = [nodes, subs].find((r) => r.status === "rejected");
  say($("system-error"), failed ? `Cannot load: ${explain(failed.reason)}` : "");
  if (nodes.status === "fulfilled") {
    const items = nodes.value?.items || [];
    $("sockets-total").textContent = String(nodes.value?.totalSockets ?? 0);
    $("nodes").replaceChildren(
      ...(items.length
        ? items.map((n) => h("tr", {}, h("td", {}, shortId(n.id)), h("td", { text: n.host }), h("td", { class: "num", text: String(n.sockets) }), h("td", {}, when(n.heartbeatAt, true))))
        : [h("tr", {}, h("td", { colspan: 4, class: "empty", text: "No live node has reported yet (every 5 s)." }))]),
    );
  }
  if (subs.status === "fulfilled") {
    const items = subs.value?.items || [];
    $("subscribers").replaceChildren(
      ...(items.length
        ? items.map((s) => h("tr", { class: s.lag > 0 ? "behind" : "" }, h("td", { class: "mono", text: s.name }), h("td", { class: "num", text: String(s.cursor) }), h("td", { class: "num", text: String(s.lag) })))
        : [h("tr", {}, h("td", { colspan: 3, class: "empty", text: "No subscriber has started yet." }))]),
    );
  }
  $("system-updated").replaceChildren("updated ", when(new Date().toISOString(), true));
}

function refreshAll() {
  if (!state.token || document.hidden) return;
  refreshSystem();
  refreshMoney();
  refreshDelivered();
  refreshDeadLetters();
  refreshFailedJobs();
  refreshDeliveryFailures();
}

// ---------------------------------------------------------------- notices

function noticeForm(formId, path, body, okText) {
  const form = $(formId);
  const prefix = formId.replace("-form", "");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    say($(`${prefix}-ok`), "");
    let payload;
    try {
      payload = body(form);
    } catch (err) {
      say($(`${prefix}-error`), err.message);
      return;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await api.post(path, payload);
      say($(`${prefix}-error`), "");
      say($(`${prefix}-ok`), okText);
      form.reset();
    } catch (err) {
      say($(`${prefix}-error`), explain(err));
    } finally {
      button.disabled = false;
    }
  });
}

function message(form) {
  const m = form.querySelector("textarea").value.trim();
  if (!m) throw new Error("Write the message first.");
  return m;
}

// ---------------------------------------------------------------- start

function start() {
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  $("session").hidden = false;
  $("who").textContent = state.user?.email || "";
  setLive("connecting", "Connecting…");
  updateDisputeCount();
  connect();
  refreshMoney();
  refreshDelivered();
  refreshDeadLetters();
  refreshFailedJobs();
  refreshDeliveryFailures();
  clearInterval(state.timer);
  state.timer = setInterval(refreshAll, REFRESH_MS);
  clearInterval(state.ticker);
  state.ticker = setInterval(tickCountdowns, TICK_MS);
}

$("login-form").addEventListener("submit", onLogin);
$("signout").addEventListener("click", () => signOut(""));
$("feed-clear").addEventListener("click", () => {
  $("feed").replaceChildren();
  $("feed-empty").hidden = false;
});
document.addEventListener("visibilitychange", refreshAll);
noticeForm("announce-form", "/api/admin/announcements", (f) => ({ message: message(f) }), "Sent to every connected socket.");
noticeForm(
  "maintenance-form",
  "/api/admin/maintenance",
  (f) => {
    const m = message(f);
    const local = f.querySelector("input[type=datetime-local]").value;
    const at = new Date(local);
    if (!local || Number.isNaN(at.getTime())) throw new Error("Pick when the maintenance starts.");
    return { message: m, startsAt: at.toISOString() };
  },
  "Maintenance notice sent.",
);

if (state.token && state.user?.role === "admin") start();
else showLogin("");
