// Small DOM helpers. Text always goes in through textContent, never as HTML.

/**
 * Creates an element. `attrs`: `class`, `text`, `data` (dataset), `on` ({ event: fn }),
 * anything else as an attribute (`false`/`null`/`undefined` leave it out).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "data") Object.assign(el.dataset, v);
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Shows `message` in an alert element, or hides it when `message` is empty. */
export function say(el, message) {
  el.textContent = message || "";
  el.hidden = !message;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });

/** An RFC 3339 time as a `<time>` in the admin's local time zone (full value in the tooltip). */
export function when(iso, short = false) {
  if (!iso) return h("span", { class: "muted", text: "—" });
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h("span", { text: String(iso) });
  return h("time", {
    datetime: d.toISOString(),
    title: d.toString(),
    text: (short ? timeOnly : dateTime).format(d),
  });
}

/** The last 8 characters of a UUID (v7 ids share their time prefix, not their tail): enough
 * to tell ids apart on screen; the full id is in the tooltip. */
export function shortId(id) {
  return h("code", { class: "id", title: String(id), text: `…${String(id).slice(-8)}` });
}

/** One line of JSON, cut to `max` characters. */
export function summary(value, max = 160) {
  let s;
  try {
    s = JSON.stringify(value);
  } catch {
    s = String(value);
  }
  if (s === undefined) s = "";
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}
