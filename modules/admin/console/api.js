// REST calls with the admin's bearer token; errors become ApiError with the problem document.

/** A failed call: `status`, the problem's stable `code` and a sentence for people. */
export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem?.code || (status === 0 ? "network" : `http_${status}`);
    this.title = problem?.title || "";
    this.retryAfter = retryAfter;
  }
}

/** What an admin should read for a failed call (the contract's codes spelled out). */
export function explain(err) {
  const plain = {
    no_payout_address:
      "The recipient has no payout address yet. Ask them to set one in their profile, then try again.",
    forbidden: "This account may not do that.",
    network: "The server cannot be reached. Check the connection and try again.",
    rate_limited: "Too many attempts. Wait a moment and try again.",
  };
  if (!(err instanceof ApiError)) return String(err?.message || err);
  const text = plain[err.code] || err.message;
  return `${text} (${err.code})`;
}

export function createApi({ token, onUnauthorized }) {
  async function call(method, path, body) {
    const headers = { accept: "application/json" };
    const t = token();
    if (t) headers.authorization = `Bearer ${t}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    let res;
    try {
      res = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
        cache: "no-store",
      });
    } catch {
      throw new ApiError(0, { detail: "the server cannot be reached" });
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!res.ok) {
      const err = new ApiError(res.status, data, res.headers.get("retry-after"));
      if (res.status === 401 && t && onUnauthorized) onUnauthorized(err);
      throw err;
    }
    return data;
  }
  return {
    get: (path) => call("GET", path),
    post: (path, body) => call("POST", path, body ?? {}),
    /** Every item of a paginated list (`{ items, nextCursor }`), up to `max` pages. */
    async all(path, max = 10) {
      const items = [];
      let cursor = null;
      for (let i = 0; i < max; i += 1) {
        const sep = path.includes("?") ? "&" : "?";
        const page = await call("GET", cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path);
        items.push(...(page?.items || []));
        cursor = page?.nextCursor;
        if (!cursor) break;
      }
      return items;
    },
  };
}
