// The REST half: an openapi-fetch client over the generated `paths`, with the bearer token
// and an Idempotency-Key added by middleware, and a fetch that repeats what is safe to repeat.
import createFetchClient, { type Client, type Middleware } from "openapi-fetch";
import type { paths } from "./generated/openapi.js";

/** What `getToken` may answer: a JWT (with or without `Bearer `), or nothing when logged out. */
export type TokenSource = () => string | null | undefined | Promise<string | null | undefined>;

/** The typed REST client: `rest.GET("/api/requests/{id}", { params: { path: { id } } })`. */
export type RestClient = Client<paths, `${string}/${string}`>;

/** How 429 and 503 answers are repeated (see {@link createRestClient}). */
export interface RetryOptions {
  /** Repeats after the first try, at most. Default 3. */
  attempts?: number;
  /** Waiting in all, at most, in milliseconds. Default 30 000. */
  maxWaitMs?: number;
}

export interface RestOptions {
  baseUrl: string;
  getToken?: TokenSource;
  /** A fetch to use instead of `globalThis.fetch` (tests, proxies, instrumentation). */
  fetch?: (request: Request) => Promise<Response>;
  /** `false` turns the automatic repeats off. */
  retry?: RetryOptions | false;
}

/** A fresh Idempotency-Key: 128 random bits as hex (works outside secure contexts too). */
export function newIdempotencyKey(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The bearer token as a header value, or null. */
export async function bearer(getToken: TokenSource | undefined): Promise<string | null> {
  const token = (await getToken?.())?.trim();
  if (!token) return null;
  return token.startsWith("Bearer ") ? token : `Bearer ${token}`;
}

/**
 * Middleware that adds `Authorization: Bearer <getToken()>` (unless the call set its own) and
 * an `Idempotency-Key` to every POST that has none, so that a POST repeated after a timeout or
 * a 429/503 is applied once: the server answers a repeat with the first answer.
 */
export function authMiddleware(getToken: TokenSource | undefined): Middleware {
  return {
    async onRequest({ request }) {
      if (!request.headers.has("authorization")) {
        const value = await bearer(getToken);
        if (value) request.headers.set("Authorization", value);
      }
      if (request.method === "POST" && !request.headers.has("idempotency-key")) {
        request.headers.set("Idempotency-Key", newIdempotencyKey());
      }
      return request;
    },
  };
}

/** `Retry-After` (delta-seconds or an HTTP date) in milliseconds, or null when absent or bad. */
export function retryAfterMs(value: string | null, now = Date.now()): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A fetch that repeats a 429 or 503 answer carrying `Retry-After`, after waiting that long,
 * when the call is safe to repeat: a GET or HEAD, or a POST with an Idempotency-Key (the
 * server then applies it at most once). At most `attempts` repeats and `maxWaitMs` of waiting
 * in all; an answer whose wait would go beyond that is returned as it is.
 */
export function retryingFetch(
  base: (request: Request) => Promise<Response>,
  options: RetryOptions = {},
): (request: Request) => Promise<Response> {
  const attempts = options.attempts ?? 3;
  const maxWaitMs = options.maxWaitMs ?? 30_000;
  return async (request) => {
    const method = request.method.toUpperCase();
    const safe =
      method === "GET" || method === "HEAD" || (method === "POST" && request.headers.has("idempotency-key"));
    if (!safe) return base(request);
    let waited = 0;
    for (let attempt = 0; ; attempt++) {
      const response = await base(request.clone());
      if (attempt >= attempts || (response.status !== 429 && response.status !== 503)) return response;
      const wait = retryAfterMs(response.headers.get("retry-after"));
      if (wait === null || waited + wait > maxWaitMs) return response;
      await response.body?.cancel().catch(() => undefined);
      await sleep(wait);
      waited += wait;
    }
  };
}

/** The REST client of {@link createClient}, usable on its own. */
export function createRestClient(options: RestOptions): RestClient {
  const base = options.fetch ?? ((request: Request) => globalThis.fetch(request));
  const client = createFetchClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    fetch: options.retry === false ? base : retryingFetch(base, options.retry),
  });
  client.use(authMiddleware(options.getToken));
  return client;
}
