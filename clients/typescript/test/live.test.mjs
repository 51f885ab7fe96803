// client.live() against the real server: short-lived tokens, the log's head, rooms joined
// again after a reconnect, a getToken() that fails for a while.
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

/** Records every event the socket hands on, as `{ event, payload, meta }`. */
function record(socket) {
  const seen = [];
  socket.onAny((event, payload, meta) => seen.push({ event, payload, meta }));
  return seen;
}

/** The durable events `user` may see after `after`, over REST. */
async function logAfter(user, after) {
  const out = [];
  let cursor = String(after);
  for (;;) {
    const page = await server.call("GET", `/api/events?after=${cursor}&limit=100`, user.token);
    assert.equal(page.status, 200);
    out.push(...page.body.items);
    if (!page.body.nextCursor) return out;
    cursor = page.body.nextCursor;
  }
}

function assertOnceInOrder(seen) {
  const ids = seen.filter((e) => e.meta).map((e) => e.meta.id);
  for (let i = 1; i < ids.length; i++) {
    assert.ok(ids[i] > ids[i - 1], `event ${ids[i]} after ${ids[i - 1]}: not once and in order (${ids.join(",")})`);
  }
}

test("a socket whose token lives two seconds keeps receiving every event once and in order", async () => {
  const seller = await server.user("seller");
  const buyer = await server.user("buyer");
  const first = await server.request(buyer);
  await server.offer(seller, first.id);
  const chats = await server.call("GET", "/api/chats", seller.token);
  const chatId = chats.body.items[0].id;

  // Each token expires 2 s after it was asked for, and its socket ends then.
  let tokens = 0;
  const c = client({
    getToken: () => {
      tokens++;
      return server.mint(seller, 2);
    },
  });
  const socket = c.live();
  const seen = record(socket);
  let connects = 0;
  const reasons = [];
  socket.on("connect", () => connects++);
  socket.on("disconnect", (reason) => reasons.push(reason));
  await until(() => socket.connected, "the first connect");
  const start = c.lastEventId;
  // The chat room is the only way the seller's own messages reach this socket live: it must
  // be joined again after every reconnect.
  const joined = await socket.timeout(5000).emitWithAck("join-chat-room", chatId);
  assert.equal(joined.ok, true);

  const created = [];
  const sent = [];
  for (let i = 0; i < 20; i++) {
    created.push((await server.request(buyer, `tick ${i}`)).id);
    if (i % 2 === 0) {
      const msg = await server.call("POST", `/api/chats/${chatId}/messages`, seller.token, { content: `m${i}` });
      assert.equal(msg.status, 201, JSON.stringify(msg.body));
      sent.push(msg.body.id);
    }
    await sleep(330);
  }

  const expected = (await logAfter(seller, start)).map((e) => e.id);
  await until(() => seen.filter((e) => e.meta).length >= expected.length, "every event", 10_000);
  await sleep(300);
  const got = seen.filter((e) => e.meta);
  assert.deepEqual(
    got.map((e) => e.meta.id),
    expected,
    "every durable event the seller may see, once, in order",
  );
  assert.deepEqual(
    got.filter((e) => e.event === "request:created").map((e) => e.payload.id),
    created,
  );
  assert.deepEqual(
    got.filter((e) => e.event === "chat:new-message").map((e) => e.payload.id),
    sent,
  );
  assert.ok(connects >= 3, `the token expired at least twice (${connects} connects, ${reasons.join(", ")})`);
  assert.ok(reasons.includes("io server disconnect"), reasons.join(", "));
  assert.ok(tokens >= connects, "a fresh token on every connect");
  assertOnceInOrder(seen);
});

test("the socket starts at the log's head: nothing before live(), everything after", async () => {
  const seller = await server.user("seller");
  const buyer = await server.user("buyer");
  const before = await server.request(buyer, "before");
  const c = client({ getToken: () => seller.token });
  const socket = c.live();
  const seen = record(socket);
  await until(() => c.lastEventId !== null, "the head");
  // Committed before the socket is connected: replayed from the head.
  const early = await server.request(buyer, "early");
  await until(() => socket.connected, "connect");
  const late = await server.request(buyer, "late");
  await until(() => seen.some((e) => e.payload?.id === late.id), "the late request");
  const ids = seen.filter((e) => e.event === "request:created").map((e) => e.payload.id);
  assert.deepEqual(ids, [early.id, late.id]);
  assert.ok(!ids.includes(before.id));
  assertOnceInOrder(seen);
});

test("a getToken() that fails is retried with growing pauses, and the status says so", async () => {
  const seller = await server.user("seller");
  let calls = 0;
  const c = client({
    getToken: async () => {
      calls++;
      if (calls <= 2) throw new Error("token service down");
      return seller.token;
    },
  });
  const states = [];
  c.onStatus((s) => states.push(`${s.state}${s.error ? `:${s.error.message}` : ""}`));
  const socket = c.live();
  await until(() => socket.connected, "connect after the token service recovered", 15_000);
  assert.ok(states.includes("connecting:token service down"), states.join(" "));
  assert.equal(c.status.state, "connected");
  assert.equal(c.status.error, null);
  c.close();
  assert.equal(c.status.state, "disconnected");
  assert.equal(socket.connected, false);
});

test("a refused token is asked for again, and the socket connects once it is valid", async () => {
  const seller = await server.user("seller");
  let token = server.mint(seller, -60); // long expired: refused with `unauthorized`
  // Resuming from a known id: no head to fetch, so the handshake itself is refused.
  const c = client({ getToken: () => token, lastEventId: 0 });
  const errors = [];
  c.socket.on("connect_error", (e) => errors.push(e.message));
  const socket = c.live();
  await until(() => errors.length >= 2, "the refusal, then a second try");
  assert.match(errors[0], /unauthorized/);
  assert.match(c.status.error?.message ?? "", /unauthorized/);
  assert.equal(c.status.state, "connecting");
  token = seller.token;
  await until(() => socket.connected, "connect with the new token", 15_000);
});

test("a head that cannot be read (401) is retried, and the status says why", async () => {
  const seller = await server.user("seller");
  let token = server.mint(seller, -60);
  const c = client({ getToken: () => token });
  const socket = c.live();
  await until(() => /401/.test(c.status.error?.message ?? ""), "the head's refusal in the status");
  assert.equal(c.status.state, "connecting");
  token = seller.token;
  await until(() => socket.connected, "connect with the new token", 15_000);
  assert.equal(typeof c.lastEventId, "number");
});

test("two clients of one server have their own sockets, tokens and positions", async () => {
  const seller = await server.user("seller");
  const buyer = await server.user("buyer");
  const a = client({ getToken: () => seller.token });
  const b = client({ getToken: () => buyer.token });
  const sa = a.live();
  const sb = b.live();
  assert.notEqual(sa, sb);
  const seenA = record(sa);
  const seenB = record(sb);
  await until(() => sa.connected && sb.connected, "both connected");
  const request = await server.request(buyer, "only sellers hear of it");
  await until(() => seenA.some((e) => e.payload?.id === request.id), "the seller's event");
  b.close();
  assert.equal(sa.connected, true, "closing one client leaves the other open");
  assert.ok(!seenB.some((e) => e.event === "request:created"), "a buyer is not in `sellers`");
});
