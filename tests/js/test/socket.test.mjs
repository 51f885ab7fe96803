// Wire compatibility of the Socket.IO gateway with the official socket.io-client 4.x.
// Run by tests/tests/suite/js_client.rs against a live server: BASE_URL=http://127.0.0.1:PORT.
import { test } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";

const BASE = process.env.BASE_URL;
assert.ok(BASE, "BASE_URL must be set");

async function register(role) {
  const email = `${role}-${Date.now()}-${Math.random().toString(16).slice(2)}@js.test`;
  const res = await fetch(`${BASE}/api/auth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password: "correct-horse-1", name: `JS ${role}`, role }),
  });
  assert.equal(res.status, 201);
  const body = await res.json();
  return { id: body.user.id, token: body.token };
}

function connect(opts) {
  const socket = io(BASE, { forceNew: true, reconnection: false, timeout: 5000, ...opts });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => {
      socket.close();
      reject(err);
    });
  });
}

function once(socket, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    socket.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

for (const transport of ["websocket", "polling"]) {
  test(`${transport}: auth.token connects, acks round-trip, durable events carry { id, at }`, async () => {
    const seller = await register("seller");
    const buyer = await register("buyer");
    const socket = await connect({ transports: [transport], auth: { token: seller.token } });
    try {
      assert.equal(socket.io.engine.transport.name, transport);
      const ack = await socket.timeout(5000).emitWithAck("join-user-room", seller.id);
      assert.deepEqual(ack, { ok: true, rooms: [`user-${seller.id}`] });
      const refused = await socket.timeout(5000).emitWithAck("join-user-room", buyer.id);
      assert.deepEqual(refused, { ok: false, error: "forbidden" });

      const created = once(socket, "request:created");
      const res = await fetch(`${BASE}/api/requests`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${buyer.token}` },
        body: JSON.stringify({ title: "JS bike", description: "from node", category: "bikes" }),
      });
      assert.equal(res.status, 201);
      const request = await res.json();
      const [payload, meta] = await created;
      assert.equal(payload.id, request.id);
      assert.equal(typeof meta.id, "number");
      assert.ok(!Number.isNaN(Date.parse(meta.at)), `meta.at is a timestamp: ${meta.at}`);
    } finally {
      socket.close();
    }
  });

  test(`${transport}: a bad token gets connect_error "unauthorized"`, async () => {
    await assert.rejects(
      connect({ transports: [transport], auth: { token: "not-a-token" } }),
      (err) => /unauthorized/.test(err.message),
    );
    await assert.rejects(connect({ transports: [transport] }), (err) => /unauthorized/.test(err.message));
  });

  test(`${transport}: the token is also read from the Authorization header and the cookie`, async () => {
    const buyer = await register("buyer");
    for (const extraHeaders of [{ Authorization: `Bearer ${buyer.token}` }, { Cookie: `token=${buyer.token}` }]) {
      const socket = await connect({ transports: [transport], extraHeaders });
      try {
        const ack = await socket.timeout(5000).emitWithAck("join-buyer-room", buyer.id);
        assert.equal(ack.ok, true);
      } finally {
        socket.close();
      }
    }
  });
}

test("polling upgrades to websocket and keeps the session", async () => {
  const buyer = await register("buyer");
  const socket = await connect({ auth: { token: buyer.token } });
  try {
    if (socket.io.engine.transport.name !== "websocket") {
      await new Promise((resolve) => socket.io.engine.once("upgrade", resolve));
    }
    assert.equal(socket.io.engine.transport.name, "websocket");
    const ack = await socket.timeout(5000).emitWithAck("join-user-room", buyer.id);
    assert.equal(ack.ok, true);
  } finally {
    socket.close();
  }
});
