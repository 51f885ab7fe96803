// client.rest: typed calls against the real server, the bearer token and Idempotency-Key
// middleware, and which answers are repeated (429/503 with Retry-After, only when safe).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createClient, retryAfterMs, retryingFetch } from "../dist/index.js";
import { TestServer } from "./support/server.mjs";

let server;

before(async () => {
  server = await TestServer.start();
});

after(async () => {
  await server?.close();
});

const body = { title: "A used road bike", description: "56 cm frame", category: "bikes" };

test("calls carry the token, answer { data, error, response }, and errors are Problems", async () => {
  const buyer = await server.user("buyer");
  let token = buyer.token;
  const client = createClient({ baseUrl: server.base, getToken: () => token });
  const me = await client.rest.GET("/api/users/me");
  assert.equal(me.response.status, 200);
  assert.equal(me.data?.id, buyer.id);
  const missing = await client.rest.GET("/api/requests/{id}", {
    params: { path: { id: "0190c9a4-0000-7000-8000-000000000000" } },
  });
  assert.equal(missing.response.status, 404);
  assert.equal(missing.data, undefined);
  assert.equal(missing.error?.code, "not_found");
  token = null;
  const anonymous = await client.rest.GET("/api/users/me");
  assert.equal(anonymous.response.status, 401);
  assert.equal(anonymous.error?.code, "unauthorized");
});

test("every POST gets its own Idempotency-Key; GETs get none", async () => {
  const buyer = await server.user("buyer");
  const keys = [];
  const client = createClient({
    baseUrl: server.base,
    getToken: () => buyer.token,
    fetch: (request) => {
      keys.push([request.method, request.headers.get("idempotency-key")]);
      return fetch(request);
    },
  });
  const a = await client.rest.POST("/api/requests", { body });
  const b = await client.rest.POST("/api/requests", { body });
  await client.rest.GET("/api/requests", { params: { query: { mine: true } } });
  assert.equal(a.response.status, 201);
  assert.equal(b.response.status, 201);
  assert.notEqual(a.data?.id, b.data?.id, "two calls, two requests");
  assert.equal(keys.length, 3);
  assert.match(keys[0][1], /^[0-9a-f]{32}$/);
  assert.notEqual(keys[0][1], keys[1][1]);
  assert.deepEqual(keys[2], ["GET", null]);
});

test("an Idempotency-Key retry returns the first answer and changes nothing", async () => {
  const buyer = await server.user("buyer");
  // The first answer is lost on the way back (a 503 with Retry-After instead): the client
  // repeats the POST with the same key, and the server answers what it answered first.
  let calls = 0;
  const sent = [];
  const client = createClient({
    baseUrl: server.base,
    getToken: () => buyer.token,
    fetch: async (request) => {
      calls++;
      sent.push(request.headers.get("idempotency-key"));
      const response = await fetch(request);
      if (calls === 1) {
        await response.arrayBuffer();
        return new Response('{"status":503}', { status: 503, headers: { "retry-after": "0" } });
      }
      return response;
    },
  });
  const created = await client.rest.POST("/api/requests", { body });
  assert.equal(calls, 2);
  assert.equal(sent[0], sent[1], "the repeat carries the same key");
  assert.equal(created.response.status, 201);
  assert.equal(created.response.headers.get("idempotent-replayed"), "true");
  const mine = await client.rest.GET("/api/requests", { params: { query: { mine: true } } });
  assert.deepEqual(
    mine.data?.items.map((r) => r.id),
    [created.data?.id],
    "one request, not two",
  );

  // The same key given by the caller: the first answer again, marked as replayed.
  const key = "order-42-attempt";
  const first = await client.rest.POST("/api/requests", { body, headers: { "Idempotency-Key": key } });
  const again = await client.rest.POST("/api/requests", { body, headers: { "Idempotency-Key": key } });
  assert.equal(first.response.status, 201);
  assert.equal(again.response.status, 201);
  assert.equal(again.data?.id, first.data?.id);
  assert.equal(again.response.headers.get("idempotent-replayed"), "true");
  const other = await client.rest.POST("/api/requests", {
    body: { ...body, title: "Something else" },
    headers: { "Idempotency-Key": key },
  });
  assert.equal(other.response.status, 422);
  assert.equal(other.error?.code, "idempotency_key_reused");
});

/** A fake fetch answering `statuses` in turn (with `headers`), recording each call's time. */
function fake(statuses, headers = {}) {
  const calls = [];
  const fn = async (request) => {
    calls.push({ at: Date.now(), method: request.method, body: await request.clone().text() });
    const status = statuses[Math.min(calls.length - 1, statuses.length - 1)];
    return new Response(status === 204 ? null : "{}", { status, headers: status >= 400 ? headers : {} });
  };
  return { fn, calls };
}

const req = (method, headers = {}) =>
  new Request("http://127.0.0.1:9/api/x", {
    method,
    headers,
    body: method === "GET" ? undefined : '{"a":1}',
  });

test("429 and 503 with Retry-After are repeated after that pause when the call is safe", async () => {
  const { fn, calls } = fake([429, 503, 200], { "retry-after": "1" });
  const started = Date.now();
  const res = await retryingFetch(fn)(req("GET"));
  assert.equal(res.status, 200);
  assert.equal(calls.length, 3);
  assert.ok(calls[1].at - calls[0].at >= 950, "waited Retry-After");
  assert.ok(Date.now() - started >= 1900);

  const post = fake([503, 201], { "retry-after": "0" });
  const created = await retryingFetch(post.fn)(req("POST", { "idempotency-key": "k1" }));
  assert.equal(created.status, 201);
  assert.equal(post.calls.length, 2);
  assert.equal(post.calls[1].body, '{"a":1}', "the body is sent again");
});

test("what is not safe to repeat, or would wait too long, is answered as it came", async () => {
  for (const [what, request, statuses, headers] of [
    ["a POST without a key", req("POST"), [503, 201], { "retry-after": "0" }],
    ["a PATCH", req("PATCH"), [429, 200], { "retry-after": "0" }],
    ["no Retry-After", req("GET"), [503, 200], {}],
    ["a wait beyond 30 s", req("GET"), [429, 200], { "retry-after": "31" }],
    ["another status", req("GET"), [500, 200], { "retry-after": "0" }],
  ]) {
    const { fn, calls } = fake(statuses, headers);
    const res = await retryingFetch(fn)(request);
    assert.equal(res.status, statuses[0], what);
    assert.equal(calls.length, 1, what);
  }
  const { fn, calls } = fake([503], { "retry-after": "0" });
  const res = await retryingFetch(fn)(req("GET"));
  assert.equal(res.status, 503);
  assert.equal(calls.length, 4, "at most 3 repeats");

  const budget = fake([429], { "retry-after": "1" });
  const limited = await retryingFetch(budget.fn, { maxWaitMs: 1500 })(req("GET"));
  assert.equal(limited.status, 429);
  assert.equal(budget.calls.length, 2, "one wait of 1 s fits in 1.5 s, a second does not");
});

test("Retry-After is read as seconds or as an HTTP date", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  assert.equal(retryAfterMs("7", now), 7000);
  assert.equal(retryAfterMs("Thu, 01 Jan 2026 00:00:05 GMT", now), 5000);
  assert.equal(retryAfterMs("Wed, 31 Dec 2025 00:00:00 GMT", now), 0);
  assert.equal(retryAfterMs("soon", now), null);
  assert.equal(retryAfterMs(null, now), null);
});
