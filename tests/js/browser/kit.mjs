// What the admin console's browser tests share: Debian's Chromium (never a downloaded
// browser) through playwright-core, a console page that records what it asked for, sign-in,
// and REST calls with a bearer token.
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

export const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is required`);
  return v;
};

export const WAIT = { timeout: 20_000 };

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** A fresh page on `${base}/admin` that records every request URL, page error and CSP complaint. */
export async function openConsole(browser, base, viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport, timezoneId: "Europe/Berlin" });
  const page = await context.newPage();
  const seen = { urls: [], foreign: [], pageErrors: [], csp: [] };
  const ws = base.replace(/^http/, "ws") + "/";
  page.on("request", (r) => {
    const u = r.url();
    seen.urls.push(u);
    if (!u.startsWith(`${base}/`) && !u.startsWith(ws) && !u.startsWith("data:")) seen.foreign.push(u);
  });
  page.on("websocket", (s) => {
    if (!s.url().startsWith(ws)) seen.foreign.push(s.url());
  });
  page.on("pageerror", (e) => seen.pageErrors.push(String(e)));
  page.on("console", (m) => {
    if (/content security policy/i.test(m.text())) seen.csp.push(m.text());
  });
  const res = await page.goto(`${base}/admin`);
  assert.equal(res.status(), 200);
  const csp = res.headers()["content-security-policy"] || "";
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'/);
  return { context, page, seen };
}

export async function signIn(page, email, password) {
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

export async function rest(base, method, path, token, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

export function assertClean(seen) {
  assert.deepEqual(seen.foreign, [], "the page asked another origin for something");
  assert.deepEqual(seen.pageErrors, [], "the page threw");
  assert.deepEqual(seen.csp, [], "the page broke its own Content-Security-Policy");
}
