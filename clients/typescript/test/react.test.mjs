// @marketplace/client/react in Debian's Chromium: the provider opens the socket on mount and
// closes it on unmount, a hook's listener is added once (StrictMode included) and removed on
// unmount, and the connection state follows the socket.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { freePort, TestServer, until } from "./support/server.mjs";
import { launch, serveStatic } from "./support/browser.mjs";

const here = dirname(fileURLToPath(import.meta.url));
let server;
let pages;
let browser;
let page;
let seller;
let buyer;
const errors = [];

before(async () => {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const [bundle] = await Promise.all([
    build({
      entryPoints: [join(here, "react/harness.tsx")],
      bundle: true,
      write: false,
      format: "esm",
      jsx: "automatic",
      define: { "process.env.NODE_ENV": '"development"' },
      logLevel: "silent",
    }),
    (async () => {
      server = await TestServer.start({ CORS_ORIGINS: origin });
    })(),
  ]);
  pages = await serveStatic(port, {
    "/index.html": { type: "text/html", body: '<!doctype html><div id="root"></div><script type="module" src="/harness.js"></script>' },
    "/harness.js": { type: "text/javascript", body: bundle.outputFiles[0].text },
  });
  [seller, buyer] = await Promise.all([server.user("seller"), server.user("buyer")]);
  browser = await launch();
  page = await browser.newPage();
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${origin}/?api=${encodeURIComponent(server.base)}&token=${encodeURIComponent(seller.token)}`);
});

after(async () => {
  await browser?.close();
  pages?.close();
  await server?.close();
});

const harness = (fn, ...args) => page.evaluate(([f, a]) => window.harness[f](...a), [fn, args]);

test("the provider connects, and a hook hands each event to the component once", async () => {
  await page.locator("#state", { hasText: "connected" }).waitFor({ timeout: 10_000 });
  assert.equal(await harness("listeners", "request:created"), 1, "one listener under StrictMode");
  const request = await server.request(buyer, "seen by the hook");
  await page.locator("#feed li", { hasText: "seen by the hook" }).waitFor({ timeout: 10_000 });
  assert.equal(await page.locator("#feed li").count(), 1);
  assert.ok(request.id);
});

test("unmounting a component removes its listener; mounting it again adds one", async () => {
  await harness("show", true, false);
  assert.equal(await harness("listeners", "request:created"), 0);
  await harness("show", true, true);
  assert.equal(await harness("listeners", "request:created"), 1);
  await server.request(buyer, "after the remount");
  await page.locator("#feed li", { hasText: "after the remount" }).waitFor({ timeout: 10_000 });
  assert.equal(await page.locator("#feed li").count(), 1, "the new component saw it once");
});

test("unmounting the provider closes the socket; mounting it opens it again", async () => {
  await harness("show", false, false);
  await until(async () => !(await harness("connected")), "the socket closed");
  assert.equal(await harness("state"), "disconnected");
  await harness("show", true, true);
  await page.locator("#state", { hasText: "connected" }).waitFor({ timeout: 10_000 });
  assert.equal(await harness("connected"), true);
  assert.deepEqual(errors, []);
});
