// @marketplace/client: the marketplace API for TypeScript and JavaScript frontends.
//
//   const client = createClient({ baseUrl: "http://127.0.0.1:3000", getToken: () => token });
//   const { data, error } = await client.rest.POST("/api/requests", { body });
//   const socket = client.live();
//   socket.on("request:created", (request, meta) => ...);
import { Live, type ConnectionStatus, type LiveSocket } from "./live.js";
import { createRestClient, type RestClient, type RetryOptions, type TokenSource } from "./rest.js";
import type { ManagerOptions, SocketOptions } from "socket.io-client";

export interface ClientOptions {
  /** The server's origin, e.g. `http://127.0.0.1:3000` (REST and Socket.IO share it). */
  baseUrl: string;
  /**
   * The current JWT (with or without `Bearer `), or null/undefined when logged out. Asked on
   * every REST call and on every socket (re)connect, so a renewed token is picked up; a call
   * that throws is retried with growing pauses by the socket (see `status.error`).
   */
  getToken?: TokenSource;
  /** A fetch to use instead of `globalThis.fetch`. */
  fetch?: (request: Request) => Promise<Response>;
  /** Repeats of 429/503 answers (default: 3 repeats, 30 s of waiting in all); `false`: none. */
  retry?: RetryOptions | false;
  /** Resume live events after this id (e.g. `client.lastEventId` kept across a reload). */
  lastEventId?: number | null;
  /** Options for `io()` (transports, reconnection delays, ...). */
  socket?: Partial<ManagerOptions & SocketOptions>;
}

export interface MarketplaceClient {
  /** The typed REST client (openapi-fetch): answers `{ data, error, response }`, `error` a `Problem`. */
  readonly rest: RestClient;
  /** Opens (when not open) and answers the one live socket of this client. */
  live(): LiveSocket;
  /** The live socket without opening it (to add listeners before `live()`). */
  readonly socket: LiveSocket;
  /** The connection state, its last error and the newest event id handled. */
  readonly status: ConnectionStatus;
  /** Calls `listener` on every change of `status`; answers the function that removes it. */
  onStatus(listener: (status: ConnectionStatus) => void): () => void;
  /** The newest durable event id handled (keep it to resume after a reload), null before the first connect. */
  readonly lastEventId: number | null;
  /** Closes the live socket (`live()` opens it again). */
  close(): void;
}

/** A client of one marketplace server. */
export function createClient(options: ClientOptions): MarketplaceClient {
  const baseUrl = options.baseUrl.replace(/\/+$/, "");
  const rest = createRestClient({
    baseUrl,
    getToken: options.getToken,
    fetch: options.fetch,
    retry: options.retry,
  });
  let live: Live | undefined;
  const instance = () =>
    (live ??= new Live({
      baseUrl,
      getToken: options.getToken,
      rest,
      lastEventId: options.lastEventId ?? null,
      socket: options.socket,
    }));
  return {
    rest,
    live: () => instance().open(),
    get socket() {
      return instance().socket;
    },
    get status() {
      return instance().status;
    },
    onStatus: (listener) => instance().onStatus(listener),
    get lastEventId() {
      return live ? live.lastEventId : (options.lastEventId ?? null);
    },
    close: () => {
      live?.socket.disconnect();
    },
  };
}

export { backoffMs } from "./live.js";
export type { ConnectionState, ConnectionStatus, LiveSocket } from "./live.js";
export {
  authMiddleware,
  createRestClient,
  newIdempotencyKey,
  retryAfterMs,
  retryingFetch,
} from "./rest.js";
export type { RestClient, RestOptions, RetryOptions, TokenSource } from "./rest.js";
export type { components, operations, paths } from "./generated/openapi.js";
export type * from "./generated/api.js";
