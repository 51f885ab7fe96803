// A strict TypeScript frontend written against the installed package (`npm pack`, then
// `npm install` of the tarball), compiled by test/package.test.mjs with `strict` and
// `nodenext` resolution. Each `@ts-expect-error` marks a misuse the types must refuse: tsc
// fails on a directive with no error under it, and the test compiles a copy without the
// directives and checks that exactly those lines fail.
import {
  createClient,
  type ConnectionState,
  type EventMeta,
  type LiveSocket,
  type MarketplaceClient,
  type Problem,
  type PurchaseRequest,
  type ServerToClientEvents,
  type User,
  type paths,
} from "@marketplace/client";
import { MarketplaceProvider, useConnectionState, useMarketplace, useMarketplaceEvent } from "@marketplace/client/react";
import { createElement } from "react";

let token: string | null = null;
const client: MarketplaceClient = createClient({ baseUrl: "http://127.0.0.1:3000", getToken: () => token });

export async function rest(): Promise<void> {
  const login = await client.rest.POST("/api/auth/login", { body: { email: "bea@example.com", password: "secret-pass" } });
  if (login.error) {
    const problem: Problem = login.error;
    console.log(problem.code, problem.status);
    return;
  }
  token = login.data.token;
  const me: User = login.data.user;
  const created = await client.rest.POST("/api/requests", {
    body: { title: "Road bike", description: "56 cm", category: "bikes" },
  });
  if (!created.data) return;
  const request: PurchaseRequest = created.data;
  const one = await client.rest.GET("/api/requests/{id}", { params: { path: { id: request.id } } });
  const status: PurchaseRequest["status"] | undefined = one.data?.status;
  const page = await client.rest.GET("/api/requests", { params: { query: { mine: true, limit: 10 } } });
  const next: string | null | undefined = page.data?.nextCursor;
  const head = await client.rest.GET("/api/events/head");
  const headId: number | undefined = head.data?.id;
  type Created = paths["/api/requests"]["post"]["responses"][201]["content"]["application/json"];
  const same: Created = request;
  console.log(me.role, status, next, headId, same);

  // @ts-expect-error an unknown path
  await client.rest.GET("/api/requestz", {});
  // @ts-expect-error a body of the wrong shape: a request has no `price`, and needs a category
  await client.rest.POST("/api/requests", { body: { title: "Road bike", description: "56 cm", price: 5 } });
  // @ts-expect-error a path parameter is required
  await client.rest.GET("/api/requests/{id}", {});
  // @ts-expect-error a method the path does not have
  await client.rest.DELETE("/api/requests", {});
  // @ts-expect-error the answer's fields are typed: `title` is a string
  const title: number | undefined = one.data?.title;
  console.log(title);
}

export function live(): LiveSocket {
  const socket = client.live();
  socket.on("request:created", (request, meta: EventMeta) => console.log(request.title, meta.id, meta.at));
  socket.on("chat:typing", ({ chatId, userId }) => console.log(chatId, userId));
  socket.onAny((event: string, ...args: unknown[]) => console.log(event, args.length));
  socket.emit("join-chat-room", "chat-id", (answer) => console.log(answer.ok ? answer.rooms : answer.error));
  const state: ConnectionState = client.status.state;
  const last: number | null = client.lastEventId;
  console.log(state, last);

  // @ts-expect-error an unknown event
  socket.on("request:deleted", () => undefined);
  // @ts-expect-error a payload of another shape: `request:created` carries a PurchaseRequest
  socket.on("request:created", (request: { offerId: number }) => console.log(request));
  // @ts-expect-error an unknown client event
  socket.emit("chat:shout", { chatId: "c" });
  // @ts-expect-error a wrong argument: `chat:send` takes an object
  socket.emit("chat:send", "hello", () => undefined);
  // @ts-expect-error no such state
  const gone: ConnectionState = "offline";
  console.log(gone);
  return socket;
}

function Badge() {
  const state: ConnectionState = useConnectionState();
  const { rest: api } = useMarketplace();
  useMarketplaceEvent("request:created", (request: PurchaseRequest, meta: EventMeta) => console.log(request.id, meta.id));
  useMarketplaceEvent("system:announcement", ({ message }) => console.log(message, api));
  // @ts-expect-error an unknown event in a hook
  useMarketplaceEvent("request:deleted", () => undefined);
  return createElement("span", null, state);
}

export const app = createElement(MarketplaceProvider, { client }, createElement(Badge));
export type Listener = ServerToClientEvents["offer:accepted"];
