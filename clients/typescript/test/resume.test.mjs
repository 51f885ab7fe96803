// What a client missed while it was away reaches it once and in order: across a server
// restart (replayed by the server from `auth.lastEventId`), and beyond the replay's 500 events
// (backfilled over GET /api/events before the live events that arrive meanwhile).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createClient } from "../dist/index.js";
import { TestServer, sleep, until } from "./support/server.mjs";

let server;
const clients = [];

before(async () => {
  server = await TestServer.start();
});

after(async () => {
  for (const c of clients) c.close();
  await server?.close();
});

function client(options) {
  const c = createClient({ baseUrl: server.base, ...options });
  clients.push(c);
  return c;
}

/** The `request:created` payload ids the socket handed on, checking ids grow strictly. */
function createdIds(seen) {
  const ids = seen.map((e) => e.meta.id);
  for (let i = 1; i < ids.length; i++) {
    assert.ok(ids[i] > ids[i - 1], `event ${ids[i]} after ${ids[i - 1]}: not once and in order`);
  }
  return seen.filter((e) => e.event === "request:created").map((e) => e.payload.id);
}

function record(socket) {
  const seen = [];
  socket.onAny((event, payload, meta) => {
    if (meta) seen.push({ event, payload, meta });
  });
  return seen;
}

/** Runs `count` calls of `make(i)`, `width` at a time; answers their results in order of `i`. */
async function inParallel(count, width, make) {
  const out = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < count) {
        const i = next++;
        out[i] = await make(i);
      }
    }),
  );
  return out;
}

test("events committed while the server restarted and the client was away are replayed once, in order", async () => {
  const seller = await server.user("seller");
  const buyer = await server.user("buyer");
  const c = client({
    getToken: () => seller.token,
    // Fixed reconnection pauses, so the test knows when the client is away.
    socket: { reconnectionDelay: 2000, reconnectionDelayMax: 2000, randomizationFactor: 0 },
  });
  const socket = c.live();
  const seen = record(socket);
  await until(() => socket.connected, "connect");
  const before = await server.request(buyer, "before the restart");
  await until(() => seen.length === 1, "the first request");

  const errors = [];
  socket.on("connect_error", (e) => errors.push(e));
  await server.stop();
  // The client tried once and failed: its next try is 2 s away.
  await until(() => errors.length >= 1 && !socket.connected, "a failed reconnect while the server is down");
  await server.start();
  const away = [];
  for (let i = 0; i < 5; i++) away.push((await server.request(buyer, `away ${i}`)).id);
  assert.equal(socket.connected, false, "the client was away while these were committed");

  await until(() => socket.connected, "the reconnect", 15_000);
  const live = await server.request(buyer, "after the reconnect");
  await until(() => seen.some((e) => e.payload.id === live.id), "the live request");
  await sleep(200);
  assert.deepEqual(createdIds(seen), [before.id, ...away, live.id]);
});

test("more than 500 missed events are backfilled over REST, in order, before live events", async () => {
  const seller = await server.user("seller");
  const buyer = await server.user("buyer");
  let backfills = 0;
  const liveDuringBackfill = [];
  const c = client({
    getToken: () => seller.token,
    // Live events are committed while the backfill's first page is on its way back, so
    // they reach the socket before the page does: the SDK must hold them back.
    fetch: async (request) => {
      const response = await fetch(request);
      if (new URL(request.url).pathname === "/api/events" && backfills++ === 0) {
        for (let i = 0; i < 3; i++) liveDuringBackfill.push((await server.request(buyer, `live ${i}`)).id);
        await sleep(300);
      }
      return response;
    },
  });
  const socket = c.live();
  const seen = record(socket);
  await until(() => socket.connected, "connect");
  const first = await server.request(buyer, "first");
  await until(() => seen.length === 1, "the first request");

  c.close();
  const missed = await inParallel(520, 8, async (i) => (await server.request(buyer, `missed ${i}`)).id);
  c.live();
  await until(() => seen.length >= 1 + 520 + 3, "every missed and live request", 30_000);
  await sleep(200);
  assert.ok(backfills >= 1, "the gap was read over REST");
  const order = createdIds(seen);
  // Ids grow strictly (checked above), and the requests arrive in the order they were made.
  const expected = [first.id, ...missed, ...liveDuringBackfill];
  assert.equal(order.length, expected.length);
  assert.deepEqual(new Set(order), new Set(expected));
  assert.deepEqual(order.slice(-3), liveDuringBackfill, "live events after the backfilled ones");
});
