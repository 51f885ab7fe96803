// `review:published` through the official socket.io-client 4.x, on both transports. Started by
// tests/tests/reviews.rs against a live server with a completed request:
// BASE_URL, REQUEST_ID, BUYER_TOKEN, SELLER_TOKEN (its two parties) and STRANGER_TOKEN (a
// buyer with nothing to do with it).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is required`);
  return v;
};
const BASE = env("BASE_URL");
const REQUEST_ID = env("REQUEST_ID");

function connect(token, transport) {
  const socket = io(BASE, { forceNew: true, reconnection: false, timeout: 5000, transports: [transport], auth: { token } });
  const got = [];
  socket.on("review:published", (review, meta) => got.push({ review, meta }));
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve({ socket, got }));
    socket.once("connect_error", reject);
  });
}

async function post(path, token, body) {
  const res = await fetch(`${BASE}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const byAuthor = (a, b) => a.authorId.localeCompare(b.authorId);

let buyer, seller, stranger;

before(async () => {
  // One party on each transport: the event reaches both kinds of socket.
  buyer = await connect(env("BUYER_TOKEN"), "websocket");
  seller = await connect(env("SELLER_TOKEN"), "polling");
  stranger = await connect(env("STRANGER_TOKEN"), "websocket");
});

after(() => {
  for (const s of [buyer, seller, stranger]) s?.socket.close();
});

test("a hidden review is published to nobody; the second publishes both to both parties only", async () => {
  const first = await post(`/api/requests/${REQUEST_ID}/reviews`, env("BUYER_TOKEN"), { rating: 5, comment: "Great." });
  assert.equal(first.status, 201, JSON.stringify(first.body));
  assert.equal(first.body.publishedAt, null);
  await sleep(1500);
  assert.deepEqual([buyer.got, seller.got, stranger.got], [[], [], []], "hidden means no event");

  const second = await post(`/api/requests/${REQUEST_ID}/reviews`, env("SELLER_TOKEN"), { rating: 4 });
  assert.equal(second.status, 201, JSON.stringify(second.body));
  const want = [{ ...first.body, publishedAt: second.body.publishedAt }, second.body].sort(byAuthor);
  for (const party of [buyer, seller]) {
    for (let i = 0; i < 100 && party.got.length < 2; i += 1) await sleep(100);
    assert.deepEqual(party.got.map((g) => g.review).sort(byAuthor), want);
    for (const { meta } of party.got) {
      assert.equal(typeof meta.id, "number", "durable events carry their id");
      assert.ok(!Number.isNaN(Date.parse(meta.at)));
    }
  }
  await sleep(1000);
  assert.equal(buyer.got.length, 2, "once each");
  assert.equal(seller.got.length, 2, "once each");
  assert.deepEqual(stranger.got, [], "nobody else");
});
