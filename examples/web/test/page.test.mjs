// The example page (dist/, from `npm run build`) in Debian's Chromium, served by a plain
// static server on its own origin, against the real server (CORS_ORIGINS names the page's
// origin): a seller logs in, a request made over REST appears live, the chat works both
// ways, and the page carries on by itself after the server restarts.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, TestServer } from "../../../clients/typescript/test/support/server.mjs";
import { launch, serveStatic } from "../../../clients/typescript/test/support/browser.mjs";

const dist = join(dirname(fileURLToPath(import.meta.url)), "../dist");
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".map": "application/json", ".txt": "text/plain" };
const WAIT = { timeout: 15_000 };

let server;
let pages;
let browser;
let page;
let origin;
let buyer;
let seller;
let chatId;
const seen = { foreign: [], errors: [] };

before(async () => {
  assert.ok(existsSync(join(dist, "index.html")), "dist/ is missing: run `npm run build` first");
  const files = {};
  for (const name of readdirSync(dist)) {
    files[`/${name}`] = { type: TYPES[extname(name)] ?? "application/octet-stream", body: readFileSync(join(dist, name)) };
  }
  const port = await freePort();
  origin = `http://127.0.0.1:${port}`;
  pages = await serveStatic(port, files);
  server = await TestServer.start({ CORS_ORIGINS: origin });
  [buyer, seller] = await Promise.all([server.user("buyer"), server.user("seller")]);
  const first = await server.request(buyer, "A tandem bicycle");
  await server.offer(seller, first.id);
  chatId = (await server.call("GET", "/api/chats", seller.token)).body.items[0].id;

  browser = await launch();
  page = await browser.newPage();
  const api = server.base;
  page.on("request", (r) => {
    const u = r.url();
    if (!u.startsWith(`${origin}/`) && !u.startsWith(`${api}/`)) seen.foreign.push(u);
  });
  page.on("websocket", (ws) => {
    if (!ws.url().startsWith(api.replace(/^http/, "ws"))) seen.foreign.push(ws.url());
  });
  page.on("pageerror", (e) => seen.errors.push(String(e)));
  await page.goto(`${origin}/?api=${encodeURIComponent(api)}`);
});

after(async () => {
  await browser?.close();
  pages?.close();
  await server?.close();
});

const connection = () => page.getByTestId("connection");
const requests = () => page.getByTestId("requests");

test("a seller logs in and sees the open requests and the chat, connected", async () => {
  await page.getByLabel("Email").fill(seller.email);
  await page.getByLabel("Password").fill(seller.password);
  await page.getByRole("button", { name: "Log in" }).click();
  await connection().filter({ hasText: "connected" }).waitFor(WAIT);
  await requests().getByText("A tandem bicycle").waitFor(WAIT);
  await page.getByTestId("chats").getByRole("button").first().waitFor(WAIT);
});

test("a request made over REST appears on the page live", async () => {
  await server.request(buyer, "A red canoe");
  await requests().getByText("A red canoe").waitFor(WAIT);
  assert.equal(await requests().getByText("A red canoe").count(), 1);
});

test("the chat shows the buyer's message live, and sends the seller's", async () => {
  await page.getByTestId("chats").getByRole("button").first().click();
  const sent = await server.call("POST", `/api/chats/${chatId}/messages`, buyer.token, { content: "Is it still available?" });
  assert.equal(sent.status, 201);
  await page.getByTestId("chat").getByText("Is it still available?").waitFor(WAIT);
  await page.getByRole("textbox", { name: "Message", exact: true }).fill("Yes, it is.");
  await page.getByRole("button", { name: "Send" }).click();
  await page.getByTestId("chat").getByText("Yes, it is.").waitFor(WAIT);
  const messages = await server.call("GET", `/api/chats/${chatId}/messages`, buyer.token);
  assert.ok(messages.body.items.some((m) => m.content === "Yes, it is." && m.senderId === seller.id));
});

test("the page survives the server restarting: it reconnects and catches up by itself", async () => {
  await server.stop();
  await connection().filter({ hasText: "connecting" }).waitFor(WAIT);
  await server.start();
  // Committed right after the restart, whether or not the page is back yet.
  await server.request(buyer, "A rowing machine");
  await server.call("POST", `/api/chats/${chatId}/messages`, buyer.token, { content: "Back again" });
  await connection().filter({ hasText: "connected" }).waitFor(WAIT);
  await requests().getByText("A rowing machine").waitFor(WAIT);
  await page.getByTestId("chat").getByText("Back again").waitFor(WAIT);
  await server.request(buyer, "A folding kayak");
  await requests().getByText("A folding kayak").waitFor(WAIT);
  for (const title of ["A red canoe", "A rowing machine", "A folding kayak"]) {
    assert.equal(await requests().getByText(title).count(), 1, `${title} once`);
  }
  assert.equal(await page.getByTestId("chat").getByText("Back again").count(), 1);
});

test("logging out and in as the buyer gives the buyer's page on a socket of its own", async () => {
  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByLabel("Email").fill(buyer.email);
  await page.getByLabel("Password").fill(buyer.password);
  await page.getByRole("button", { name: "Log in" }).click();
  await connection().filter({ hasText: "connected" }).waitFor(WAIT);
  await page.getByRole("heading", { name: "My requests" }).waitFor(WAIT);
  await requests().getByText("A rowing machine").waitFor(WAIT);
  await page.getByLabel("Title").fill("A tent for two");
  await page.getByLabel("Description").fill("Light, for hiking");
  await page.getByLabel("Category").fill("outdoor");
  await page.getByRole("button", { name: "Post" }).click();
  await requests().getByText("A tent for two").waitFor(WAIT);
  // The seller's chat message reaches the buyer's socket, not the seller's old one.
  await page.getByTestId("chats").getByRole("button").first().click();
  await server.call("POST", `/api/chats/${chatId}/messages`, seller.token, { content: "Shall I ship it?" });
  await page.getByTestId("chat").getByText("Shall I ship it?").waitFor(WAIT);
  const mine = await server.call("GET", "/api/requests?mine=true", buyer.token);
  assert.ok(mine.body.items.some((r) => r.title === "A tent for two"));
});

test("the page asked no other origin for anything and threw nothing", async () => {
  assert.deepEqual(seen.foreign, []);
  assert.deepEqual(seen.errors, []);
});
