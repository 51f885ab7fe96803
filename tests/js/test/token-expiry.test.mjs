// A socket lives no longer than its token: the server disconnects it when the token expires,
// and the official client sees `disconnect` with reason "io server disconnect".
// Run by tests/tests/suite/js_client.rs: BASE_URL=http://127.0.0.1:PORT, JWT_SECRET=<the server's>.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { io } from "socket.io-client";

const BASE = process.env.BASE_URL;
const SECRET = process.env.JWT_SECRET;
assert.ok(BASE, "BASE_URL must be set");
assert.ok(SECRET, "JWT_SECRET must be set (the secret the server under test signs with)");

/** An HS256 token for `sub`, expiring `expIn` seconds from now (as another service would mint). */
function mint(sub, role, expIn) {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${part({ alg: "HS256", typ: "JWT" })}.${part({ sub, role, iat: now, exp: now + expIn })}`;
  const sig = createHmac("sha256", SECRET).update(unsigned).digest("base64url");
  return `${unsigned}.${sig}`;
}

async function register(role) {
  const email = `${role}-${Date.now()}-${Math.random().toString(16).slice(2)}@js.test`;
  const res = await fetch(`${BASE}/api/auth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password: "correct-horse-1", name: `JS ${role}`, role }),
  });
  assert.equal(res.status, 201);
  return (await res.json()).user.id;
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

for (const transport of ["websocket", "polling"]) {
  test(`${transport}: the server disconnects a socket when its token expires`, async () => {
    const id = await register("buyer");
    const socket = await connect({ transports: [transport], auth: { token: mint(id, "buyer", 2) } });
    try {
      const ack = await socket.timeout(5000).emitWithAck("join-user-room", id);
      assert.equal(ack.ok, true, "the socket works while its token is valid");
      const reason = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("still connected 15 s after expiry")), 15000);
        socket.once("disconnect", (r) => {
          clearTimeout(timer);
          resolve(r);
        });
      });
      assert.equal(reason, "io server disconnect");
    } finally {
      socket.close();
    }
  });

  test(`${transport}: a token expired more than 5 s ago is refused at connect`, async () => {
    const id = await register("buyer");
    await assert.rejects(
      connect({ transports: [transport], auth: { token: mint(id, "buyer", -6) } }),
      (err) => /unauthorized/.test(err.message),
    );
  });
}
