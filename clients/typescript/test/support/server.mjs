// The real server for the package's tests: the `marketplace` binary ($MARKETPLACE_BIN, else
// target/debug/marketplace of this repository) on a free loopback port with a fresh SQLite
// database in a temporary directory, and a known JWT_SECRET so tests can mint short-lived
// tokens as another service would. One server per test file; `restart()` keeps the port and
// the database.
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const BIN = resolve(process.env.MARKETPLACE_BIN || join(here, "../../../../target/debug/marketplace"));
export const JWT_SECRET = "sdk-test-secret-0123456789abcdef0123456789abcdef";

/** A port nobody listens on now. */
export function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class TestServer {
  /** @param {Record<string,string>} env extra environment (e.g. CORS_ORIGINS) */
  static async start(env = {}) {
    if (!existsSync(BIN)) {
      throw new Error(`${BIN} is missing: \`cargo build -p marketplace-api\` first (or set MARKETPLACE_BIN)`);
    }
    const server = new TestServer(await freePort(), env);
    await server.start();
    return server;
  }

  constructor(port, env) {
    this.port = port;
    this.base = `http://127.0.0.1:${port}`;
    this.dir = mkdtempSync(join(tmpdir(), "marketplace-sdk-"));
    this.env = {
      PATH: process.env.PATH ?? "",
      HOME: this.dir,
      HOST: "127.0.0.1",
      PORT: String(port),
      DATABASE_URL: `sqlite://${join(this.dir, "marketplace.db")}?mode=rwc`,
      STORAGE_URL: `file://${join(this.dir, "uploads")}`,
      JWT_SECRET,
      RUST_LOG: "warn",
      ...env,
    };
    this.proc = null;
    this.log = "";
    process.once("exit", () => this.proc?.kill("SIGKILL"));
  }

  async start() {
    const proc = spawn(BIN, ["serve"], { cwd: this.dir, env: this.env, stdio: ["ignore", "pipe", "pipe"] });
    this.proc = proc;
    const keep = (chunk) => {
      this.log = (this.log + chunk).slice(-20_000);
    };
    proc.stdout.on("data", keep);
    proc.stderr.on("data", keep);
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`the server exited (${proc.exitCode}):\n${this.log}`);
      try {
        const res = await fetch(`${this.base}/readyz`);
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    throw new Error(`the server did not become ready:\n${this.log}`);
  }

  /** SIGTERM (graceful), SIGKILL after 10 s. */
  async stop() {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
    this.proc = null;
  }

  async restart() {
    await this.stop();
    await this.start();
  }

  async close() {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A plain JSON call; answers `{ status, body, headers }`. */
  async call(method, path, token, body, headers = {}) {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
  }

  /** A new user of `role` (a seller gets a payout address): `{ id, email, password, token, role }`. */
  async user(role) {
    const email = `${role}-${Date.now()}-${Math.random().toString(16).slice(2)}@sdk.test`;
    const password = "correct-horse-1";
    const res = await this.call("POST", "/api/auth/register", null, { email, password, name: `SDK ${role}`, role });
    if (res.status !== 201) throw new Error(`register: ${res.status} ${JSON.stringify(res.body)}`);
    const user = { id: res.body.user.id, email, password, token: res.body.token, role };
    if (role === "seller") {
      const patched = await this.call("PATCH", "/api/users/me", user.token, { payoutAddress: `addr-${user.id.slice(0, 8)}` });
      if (patched.status !== 200) throw new Error(`payout address: ${patched.status}`);
    }
    return user;
  }

  /** `buyer`'s new open request; answers the `PurchaseRequest`. */
  async request(buyer, title = "A used road bike") {
    const res = await this.call("POST", "/api/requests", buyer.token, {
      title,
      description: "56 cm frame, good shape",
      category: "bikes",
    });
    if (res.status !== 201) throw new Error(`create request: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  /** `seller`'s offer on a request (which opens their chat with its buyer); the `SellerOffer`. */
  async offer(seller, requestId) {
    const res = await this.call("POST", `/api/requests/${requestId}/offers`, seller.token, {
      price: { amount: "120.00", currency: "USD" },
      message: "In stock.",
    });
    if (res.status !== 201) throw new Error(`offer: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  /** An HS256 token for `user` whose `exp` is `expIn` seconds from now (the server allows 5 s of leeway). */
  mint(user, expIn) {
    const part = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const now = Math.floor(Date.now() / 1000);
    const unsigned = `${part({ alg: "HS256", typ: "JWT" })}.${part({ sub: user.id, role: user.role, iat: now, exp: now + expIn })}`;
    return `${unsigned}.${createHmac("sha256", JWT_SECRET).update(unsigned).digest("base64url")}`;
  }
}

/** Resolves when `check()` is truthy (polled every 25 ms), rejects after `ms` with `what`. */
export async function until(check, what, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

export { sleep };
