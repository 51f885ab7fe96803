// A strict TypeScript frontend written against the generated module (`marketplace typescript`,
// GET /api/types.ts), checked by tests/tests/suite/frontend_types.rs with `tsc --strict --noEmit`.
// Every `@ts-expect-error` line below is a misuse the types must refuse: tsc fails on an
// unused `@ts-expect-error`, so if the generated types grew too loose this file stops compiling.
import { io, type Socket } from "socket.io-client";
import type {
  AckError,
  ClientToServerEvents,
  CreateRequestBody,
  Endpoints,
  EventMeta,
  Money,
  Notification,
  Payment,
  Problem,
  PurchaseRequest,
  RequestStatus,
  Role,
  SellerOffer,
  ServerToClientEvents,
  User,
} from "marketplace-api-types";

const API = "http://127.0.0.1:3000";

// ---- REST: one typed fetch over `Endpoints` ----
type Key = keyof Endpoints;
type Init<K extends Key> = (Endpoints[K] extends { body: infer B } ? { body: B } : {}) & {
  token?: string;
  path?: Record<string, string>;
};
async function call<K extends Key>(key: K, init: Init<K>): Promise<Endpoints[K]["response"]> {
  const [method, template] = key.split(" ") as [string, string];
  const url = template.replace(/\{(\w+)\}/g, (_, name: string) => init.path?.[name] ?? "");
  const res = await fetch(API + url, {
    method,
    headers: {
      "content-type": "application/json",
      ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
    },
    body: "body" in init ? JSON.stringify(init.body) : undefined,
  });
  if (!res.ok) {
    const problem = (await res.json()) as Problem;
    throw new Error(`${problem.status} ${problem.code}: ${problem.detail}`);
  }
  return (res.status === 204 ? undefined : await res.json()) as Endpoints[K]["response"];
}

export async function story(): Promise<void> {
  const { token, user } = await call("POST /api/auth/register", {
    body: { email: "bea@example.com", password: "secret-pass", name: "Bea", role: "buyer" },
  });
  const role: Role = user.role;
  const me: User = await call("GET /api/users/me", { token });
  const address: string | null = me.payoutAddress; // always present, maybe null
  const body: CreateRequestBody = { title: "Road bike", description: "56 cm", category: "bikes" };
  const created: PurchaseRequest = await call("POST /api/requests", { token, body });
  const status: RequestStatus = created.status;
  const budget: Money | null = created.budget;
  const page = await call("GET /api/requests/{id}/offers", { token, path: { id: created.id } });
  const offers: SellerOffer[] = page.items;
  const next: string | null | undefined = page.nextCursor;
  const pay: Payment = await call("POST /api/payments", { token, body: { requestId: created.id, crypto: "BTC" } });
  console.log(role, address, status, budget, offers, next, pay.cryptoAmount);

  // @ts-expect-error a missing field: a request needs its category
  const incomplete: CreateRequestBody = { title: "Road bike", description: "56 cm" };
  // @ts-expect-error a wrong status literal
  const shipped: RequestStatus = "shipped";
  // @ts-expect-error admins are never self-registered... but the role type is the account's; "owner" is no role
  const owner: Role = "owner";
  // @ts-expect-error an unknown operation
  await call("DELETE /api/requests/{id}", { token });
  // @ts-expect-error a body of the wrong shape
  await call("POST /api/chats/{id}/messages", { token, body: { text: "hi" } });
  console.log(incomplete, shipped, owner);
}

// ---- Socket.IO: the generated event maps ----
export function live(token: string, requestId: string, chatId: string): Socket<ServerToClientEvents, ClientToServerEvents> {
  const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(API, { auth: { token } });

  // Durable events: (payload, meta).
  socket.on("offer:accepted", (payload, meta: EventMeta) => {
    const id: number = meta.id;
    const at: string = meta.at;
    console.log(payload.offerId, payload.requestId, id, at);
  });
  socket.on("request:status-updated", ({ requestId, status }) => {
    const s: RequestStatus = status;
    console.log(requestId, s);
  });
  socket.on("notification:received", (n: Notification, meta) => console.log(n.kind, n.readAt, meta.id));
  socket.on("request:offer-received", ({ offer }) => console.log(offer.price.amount, offer.status));
  socket.on("chat:new-message", (m) => console.log(m.chatId, m.content));
  socket.on("dispute:resolved", ({ resolution }) => {
    const r: "release_to_seller" | "refund_buyer" = resolution;
    console.log(r);
  });
  // Live-only events: (payload).
  socket.on("chat:typing", ({ chatId, userId }) => console.log(chatId, userId));
  socket.on("user:online", ({ userId }) => console.log(userId));
  socket.on("events:replay-truncated", ({ lastEventId }) => console.log(lastEventId + 1));

  // Client events: acks are unions on `ok`.
  socket.emit("join-request-room", requestId, (answer) => {
    if (answer.ok) {
      console.log(answer.rooms.join(","));
    } else {
      const e: AckError["error"] = answer.error;
      console.log(e);
    }
  });
  socket.emit("chat:send", { chatId, content: "hello" }, (answer) => {
    if (answer.ok) console.log(answer.message.id, answer.message.createdAt);
  });
  socket.emit("chat:send", { chatId, attachmentIds: ["0190f1d2-0000-7000-8000-000000000000"] }, (answer) => {
    if (answer.ok) console.log(answer.message.attachments.map((a) => a.sha256), answer.message.reactions);
  });
  socket.on("chat:reaction-added", (r, meta) => console.log(r.emoji, r.count, meta.id));
  socket.emit("chat:typing", { chatId });
  void socket.timeout(5000).emitWithAck("join-chat-room", chatId).then((a) => console.log(a.ok));

  // @ts-expect-error an unknown event
  socket.on("offer:acepted", () => {});
  // @ts-expect-error typing and presence are live only: no meta argument
  socket.on("user:online", (_payload, _meta: EventMeta) => {});
  // @ts-expect-error a payload field that does not exist
  socket.on("payout:completed", (p) => console.log(p.hash));
  socket.emit("join-request-room", requestId, (answer) => {
    // @ts-expect-error `rooms` exists only once `ok` is narrowed to true
    console.log(answer.rooms);
  });
  // @ts-expect-error a missing field: chat:send needs its chatId
  socket.emit("chat:send", { content: "hello" }, () => {});
  // @ts-expect-error an unknown client event
  socket.emit("join-everything", requestId, () => {});
  return socket;
}
