// The live half: one socket.io-client socket that misses nothing.
//
// The server replays what a socket missed when it connects with `auth.lastEventId`, ends a
// socket when its token expires, and says `events:replay-truncated` when more than 500 events
// were missed. This module does the client's part of that bargain, so that a listener sees
// every durable event it may see exactly once, in id order:
// - every (re)connect asks `getToken()` afresh and sends the newest event id handled so far
//   as `auth.lastEventId` (before the first event: `GET /api/events/head`);
// - a server-side disconnect (token expiry) and a refused handshake are reconnected here,
//   since socket.io-client does not reconnect after those by itself;
// - an event id at or below the newest one handled is a duplicate and is dropped;
// - after `events:replay-truncated` the gap is read from `GET /api/events` and handed to the
//   same listeners; live events that arrive meanwhile wait and follow in order;
// - rooms joined with `join-*-room` are joined again after a reconnect, and what those rooms
//   carried in between is read from `GET /api/events` the same way.
import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";
import type { ClientToServerEvents, EventMeta, ServerToClientEvents } from "./generated/api.js";
import type { RestClient, TokenSource } from "./rest.js";

/** The socket `client.live()` answers: socket.io-client's own, typed by the generated maps. */
export type LiveSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** `connecting`: opening or reopening (also while waiting to retry); `connected`; `disconnected`: closed by the app, or never opened. */
export type ConnectionState = "connecting" | "connected" | "disconnected";

/** The connection state and why it is not `connected`. */
export interface ConnectionStatus {
  state: ConnectionState;
  /** The last failure while connecting (a `getToken()` that threw, a refused handshake, a failed backfill); null once it recovered. */
  error: Error | null;
  /** The newest durable event id handled, null before the first connect. */
  lastEventId: number | null;
}

export interface LiveOptions {
  baseUrl: string;
  getToken?: TokenSource;
  rest: RestClient;
  /** Resume after this event id (e.g. one kept across a page reload) instead of the log's head. */
  lastEventId?: number | null;
  /** Passed to `io()` (transports, reconnection delays, path, ...); `auth`, `autoConnect` and `forceNew` are the SDK's. */
  socket?: Partial<ManagerOptions & SocketOptions>;
}

type Args = unknown[];
type Deliver = (args: Args) => void;

/** Room events the SDK remembers, to join them again after a reconnect. */
const JOINS = new Set([
  "join-user-room",
  "join-seller-room",
  "join-buyer-room",
  "join-request-room",
  "join-chat-room",
]);
const TRUNCATED = "events:replay-truncated";
const PAGE = 100;
const ACK_TIMEOUT_MS = 10_000;

class Aborted extends Error {}

/** Growing pauses with jitter: ~0.5 s, 1 s, 2 s, ... at most ~15 s. */
export function backoffMs(attempt: number): number {
  const base = Math.min(15_000, 500 * 2 ** Math.min(attempt, 10));
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

function isMeta(value: unknown): value is EventMeta {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as EventMeta).id === "number" &&
    typeof (value as EventMeta).at === "string"
  );
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/** Calls `fn`, rethrowing its error outside the SDK's own flow (as an uncaught error). */
function guarded(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    setTimeout(() => {
      throw e;
    });
  }
}

export class Live {
  readonly socket: LiveSocket;
  #opts: LiveOptions;
  #lastId: number | null;
  /** The app closed the socket (`disconnect()`), or has not opened it yet. */
  #closed = true;
  /** Bumped on every handshake, close and engine close: older async work is abandoned. */
  #gen = 0;
  #attempt = 0;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  /** Joined rooms as `[event, id]`, by `event id`. */
  #rooms = new Map<string, [string, unknown]>();
  /** While true, durable events wait in `#buffer`. */
  #filling = false;
  #fillAgain = false;
  #fillAfter: Promise<unknown> | null = null;
  #buffer: Args[] = [];
  #status: ConnectionStatus;
  #listeners = new Set<(status: ConnectionStatus) => void>();
  #wakers = new Set<() => void>();
  #headAsked: Promise<void> | null = null;
  #deliver: Deliver;
  #connect: () => LiveSocket;
  #disconnect: () => LiveSocket;
  #emit: (event: string, ...args: unknown[]) => LiveSocket;

  constructor(opts: LiveOptions) {
    this.#opts = opts;
    this.#lastId = opts.lastEventId ?? null;
    this.#status = { state: "disconnected", error: null, lastEventId: this.#lastId };
    const socket: LiveSocket = io(opts.baseUrl, {
      ...opts.socket,
      // Never socket.io-client's shared socket of another client for the same URL (it would
      // carry that client's token and position).
      forceNew: true,
      autoConnect: false,
      auth: (cb: (data: object) => void) => this.#handshake(cb),
    });
    this.socket = socket;

    // Every incoming event passes socket.io-client's `emitEvent` (also those buffered
    // before `connect`), which calls the `onAny` listeners and then the `on` ones.
    const internals = socket as unknown as { emitEvent: Deliver };
    const deliver = internals.emitEvent.bind(socket);
    this.#deliver = deliver;
    internals.emitEvent = (args: Args) => this.#incoming(args);

    this.#connect = socket.connect.bind(socket);
    this.#disconnect = socket.disconnect.bind(socket);
    this.#emit = socket.emit.bind(socket) as (event: string, ...args: unknown[]) => LiveSocket;
    // `close()` and `open()` call these through `this`, so they are covered too.
    socket.connect = () => {
      this.#closed = false;
      clearTimeout(this.#reconnectTimer);
      if (!socket.connected) this.#setStatus("connecting");
      this.#head().catch(() => undefined);
      return this.#connect();
    };
    socket.disconnect = () => {
      this.#closed = true;
      this.#gen++;
      clearTimeout(this.#reconnectTimer);
      const result = this.#disconnect();
      for (const wake of [...this.#wakers]) wake();
      this.#setStatus("disconnected", null);
      return result;
    };
    socket.emit = ((event: string, ...args: unknown[]) => {
      this.#track(event, args);
      return this.#emit(event, ...args);
    }) as LiveSocket["emit"];

    socket.on("connect", () => this.#onConnect());
    socket.on("disconnect", (reason) => this.#onDisconnect(reason));
    socket.on("connect_error", (err) => this.#onConnectError(err));
    socket.io.on("close", () => {
      this.#gen++;
    });
  }

  get status(): ConnectionStatus {
    return this.#status;
  }

  get lastEventId(): number | null {
    return this.#lastId;
  }

  onStatus(listener: (status: ConnectionStatus) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Opens the socket unless it is open or opening. */
  open(): LiveSocket {
    if (this.#closed || (!this.socket.connected && !this.socket.active)) this.socket.connect();
    return this.socket;
  }

  /**
   * Before the first event: the log's newest id, where this socket starts. Asked as soon as
   * the socket is opened (not only once its transport is up), so that everything committed
   * after `live()` is after it.
   */
  #head(): Promise<void> {
    if (this.#lastId !== null) return Promise.resolve();
    this.#headAsked ??= this.#retryWhile(
      () => true,
      async () => {
        const { data, error } = await this.#opts.rest.GET("/api/events/head");
        if (!data) throw new Error(`GET /api/events/head: ${describe(error)}`);
        return data.id;
      },
    )
      .then((id) => {
        if (this.#lastId === null) this.#lastId = id;
      })
      .finally(() => {
        this.#headAsked = null;
      });
    return this.#headAsked;
  }

  /** A pause that ends early when the app closes the socket (so no timer outlives it). */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#wakers.add(wake);
    });
  }

  #setStatus(state: ConnectionState, error?: Error | null): void {
    const next: ConnectionStatus = {
      state,
      error: error === undefined ? this.#status.error : error,
      lastEventId: this.#lastId,
    };
    const s = this.#status;
    if (s.state === next.state && s.error === next.error && s.lastEventId === next.lastEventId) return;
    this.#status = next;
    for (const listener of [...this.#listeners]) guarded(() => listener(next));
  }

  /** Runs `fn` until it succeeds, with growing pauses; gives up (Aborted) once `gen` is stale. */
  #retry<T>(gen: number, fn: () => Promise<T>): Promise<T> {
    return this.#retryWhile(() => gen === this.#gen, fn);
  }

  /** Runs `fn` until it succeeds, with growing pauses, while `alive()` and the app has not closed. */
  async #retryWhile<T>(alive: () => boolean, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (!alive() || this.#closed) throw new Aborted();
      try {
        return await fn();
      } catch (e) {
        if (e instanceof Aborted) throw e;
        if (!alive() || this.#closed) throw new Aborted();
        this.#setStatus(this.socket.connected ? "connected" : "connecting", asError(e));
        await this.#sleep(backoffMs(attempt));
      }
    }
  }

  async #token(): Promise<string> {
    const token = (await this.#opts.getToken?.())?.trim();
    if (!token) throw new Error("getToken() gave no token");
    return token.replace(/^Bearer\s+/, "");
  }

  /** socket.io-client's `auth` callback: called on every (re)connect, once the engine is open. */
  #handshake(cb: (data: object) => void): void {
    const gen = ++this.#gen;
    this.#setStatus("connecting");
    (async () => {
      const token = await this.#retry(gen, () => this.#token());
      await this.#head();
      return { token, lastEventId: this.#lastId };
    })().then(
      (data) => {
        if (gen === this.#gen && !this.#closed) cb(data);
      },
      () => undefined,
    );
  }

  #onConnect(): void {
    this.#attempt = 0;
    this.#setStatus("connected", null);
    if (this.#rooms.size > 0) {
      // The server replays, then the rooms are joined (again): what those rooms carried in
      // between is read over REST; until then durable events wait, so they stay in order.
      this.#requestFill(this.#rejoin());
    }
  }

  #onDisconnect(reason: string): void {
    if (this.#closed) {
      this.#setStatus("disconnected");
      return;
    }
    this.#setStatus("connecting");
    // After a server-side disconnect (an expired token) socket.io-client stays down.
    if (!this.socket.active) this.#scheduleReconnect(reason === "io server disconnect" ? 0 : undefined);
  }

  #onConnectError(err: Error): void {
    if (this.#closed) return;
    this.#setStatus("connecting", err);
    // Refused by the server (e.g. `unauthorized`): not retried by socket.io-client.
    if (!this.socket.active) this.#scheduleReconnect();
  }

  #scheduleReconnect(delay?: number): void {
    clearTimeout(this.#reconnectTimer);
    const wait = delay ?? backoffMs(this.#attempt);
    this.#attempt++;
    this.#reconnectTimer = setTimeout(() => {
      if (!this.#closed && !this.socket.connected && !this.socket.active) this.#connect();
    }, wait);
  }

  #track(event: string, args: unknown[]): void {
    const join = JOINS.has(event);
    const leave = !join && event.startsWith("leave-") && JOINS.has(`join-${event.slice(6)}`);
    if (!join && !leave) return;
    const key = `${join ? event : `join-${event.slice(6)}`} ${JSON.stringify(args[0])}`;
    if (leave) {
      this.#rooms.delete(key);
      return;
    }
    this.#rooms.set(key, [event, args[0]]);
    const last = args.length - 1;
    const ack = args[last];
    if (typeof ack === "function") {
      // A refused join is not repeated after reconnects.
      const wrapped = (...reply: unknown[]) => {
        const answer = reply[reply.length - 1] as { ok?: unknown } | undefined;
        if (answer && answer.ok === false) this.#rooms.delete(key);
        return (ack as (...a: unknown[]) => unknown)(...reply);
      };
      // socket.io-client marks acks that take an error first (`timeout()`, `emitWithAck`).
      args[last] = Object.assign(wrapped, { withError: (ack as { withError?: boolean }).withError });
    }
  }

  /** Joins the remembered rooms again; resolves when all answered (or timed out). */
  #rejoin(): Promise<unknown> {
    const joins = [...this.#rooms.values()].map(
      ([event, id]) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ACK_TIMEOUT_MS);
          (this.#emit as (e: string, ...a: unknown[]) => void)(event, id, () => {
            clearTimeout(timer);
            resolve();
          });
        }),
    );
    return Promise.all(joins);
  }

  #incoming(args: Args): void {
    const [name, , meta] = args;
    if (name === TRUNCATED) {
      this.#requestFill(null);
      return;
    }
    if (!isMeta(meta)) {
      // Live-only events (typing, presence) have no id: nothing to order or dedupe.
      guarded(() => this.#deliver(args));
      return;
    }
    if (this.#filling) this.#buffer.push(args);
    else this.#handle(args);
  }

  /** Hands one durable event to the listeners unless its id was handled already. */
  #handle(args: Args): void {
    const id = (args[2] as EventMeta).id;
    if (this.#lastId !== null && id <= this.#lastId) return;
    this.#lastId = id;
    guarded(() => this.#deliver(args));
    this.#setStatus(this.#status.state);
  }

  /** Reads the log over REST from the newest handled id, holding live events back meanwhile. */
  #requestFill(after: Promise<unknown> | null): void {
    if (after) this.#fillAfter = Promise.all([this.#fillAfter, after]);
    if (this.#filling) {
      this.#fillAgain = true;
      return;
    }
    this.#filling = true;
    void this.#fill();
  }

  async #fill(): Promise<void> {
    try {
      do {
        this.#fillAgain = false;
        const before = this.#fillAfter;
        this.#fillAfter = null;
        await before;
        await this.#backfill();
      } while (this.#fillAgain);
    } catch {
      // Closed by the app: what was held back is replayed on the next connect.
      this.#buffer = [];
      this.#filling = false;
      return;
    }
    const held = this.#buffer.sort((a, b) => (a[2] as EventMeta).id - (b[2] as EventMeta).id);
    this.#buffer = [];
    this.#filling = false;
    for (const args of held) this.#handle(args);
  }

  async #backfill(): Promise<void> {
    let cursor = String(this.#lastId ?? 0);
    for (;;) {
      const page = await this.#retry(this.#gen, async () => {
        const { data, error } = await this.#opts.rest.GET("/api/events", {
          params: { query: { after: Number(cursor), limit: PAGE } },
        });
        if (!data) throw new Error(`GET /api/events: ${describe(error)}`);
        return data;
      }).catch((e) => {
        // A reconnect bumped the generation: keep reading, unless the app closed the socket.
        if (e instanceof Aborted && !this.#closed) return null;
        throw e;
      });
      if (page === null) continue;
      if (this.#status.error) this.#setStatus(this.#status.state, null);
      for (const item of page.items) {
        this.#handle([item.event, item.payload, { id: item.id, at: item.at }]);
      }
      if (!page.nextCursor) return;
      cursor = page.nextCursor;
    }
  }
}

function describe(error: unknown): string {
  if (error && typeof error === "object" && "status" in error) {
    const p = error as { status?: unknown; code?: unknown; detail?: unknown };
    return `${String(p.status)} ${String(p.code ?? "")} ${String(p.detail ?? "")}`.trim();
  }
  return String(error);
}
