// The Node socket.io 4.8 peer of the side-by-side benchmark (`bench/side-by-side.sh`).
//
// It answers exactly what `apps/loadgen --trigger announcement` uses, the way the marketplace
// server does:
//   POST /api/auth/register  { email, password, name, role: "buyer"|"seller" } -> 201 { token, user }
//   POST /api/auth/login     { email, password }                                -> 200 { token, user }
//   POST /api/admin/announcements (admin) { message } -> 202, then
//        io.emit("system:announcement", { message }, { id, at })
//   GET  /healthz -> 200
// and Socket.IO on /socket.io (both transports) with the same handshake check: an HS256 JWT
// signed with JWT_SECRET (claims sub, role, iat, exp; no leeway), taken, first found wins, from
// `auth.token` (with or without `Bearer `), the `Authorization: Bearer` header or the `token`
// cookie; the user must exist; refused with an error whose message contains `unauthorized`.
// On connect the socket joins `user-{id}`; sellers `seller-{id}` + `sellers`; buyers
// `buyer-{id}` + `buyers`; admins `admin` (the role from the token's claims).
//
// What it deliberately does not have: a database (users live in memory for the life of the
// process; the admin is seeded from ADMIN_EMAIL / ADMIN_PASSWORD), the event log, replay and
// presence, the client -> server events, the cookie Origin check, Redis. Plain `io.emit`.
//
// Environment: PORT (3902), JWT_SECRET (required), JWT_TTL_SECS (86400), ADMIN_EMAIL,
// ADMIN_PASSWORD.

import { createServer } from "node:http";
import { randomUUID, scrypt, randomBytes, timingSafeEqual, createSecretKey } from "node:crypto";
import { promisify } from "node:util";
import jwt from "jsonwebtoken";
import { Server } from "socket.io";

const scryptAsync = promisify(scrypt);

const PORT = Number(process.env.PORT ?? 3902);
const SECRET = process.env.JWT_SECRET;
const TTL = Number(process.env.JWT_TTL_SECS ?? 86400);
if (!SECRET || SECRET.length < 32) {
  console.error("JWT_SECRET must be set (at least 32 characters)");
  process.exit(1);
}
if (!Number.isInteger(TTL) || TTL <= 0) {
  console.error("JWT_TTL_SECS must be a positive integer");
  process.exit(1);
}

// One key object, built once (as our server builds its `DecodingKey` once): handed a string,
// jsonwebtoken 9 first tries to parse it as a PEM public key and catches the failure, which
// costs ~0.6 ms of CPU per handshake on this machine.
const KEY = createSecretKey(Buffer.from(SECRET, "utf8"));

/** id -> { id, email, name, role, hash, salt, createdAt }; the peer has no database. */
const users = new Map();
const byEmail = new Map();
let nextEventId = 1;

async function hashPassword(password, salt) {
  return scryptAsync(password, salt, 32);
}

async function addUser({ email, password, name, role }) {
  const salt = randomBytes(16);
  const user = {
    id: randomUUID(),
    email,
    name,
    role,
    salt,
    hash: await hashPassword(password, salt),
    createdAt: new Date().toISOString(),
  };
  users.set(user.id, user);
  byEmail.set(email, user);
  return user;
}

function publicUser(u) {
  return { id: u.id, email: u.email, name: u.name, role: u.role, payoutAddress: null, createdAt: u.createdAt };
}

function issue(u) {
  const now = Math.floor(Date.now() / 1000);
  return jwt.sign({ sub: u.id, role: u.role, iat: now, exp: now + TTL }, KEY, { algorithm: "HS256" });
}

/** The caller `{ id, role }` of a raw token (with or without `Bearer `), or null. */
function verify(raw) {
  if (typeof raw !== "string") return null;
  let token = raw.trim();
  if (token.startsWith("Bearer ")) token = token.slice(7).trim();
  if (!token) return null;
  let claims;
  try {
    claims = jwt.verify(token, KEY, { algorithms: ["HS256"], clockTolerance: 0 });
  } catch {
    return null;
  }
  if (typeof claims.sub !== "string" || typeof claims.iat !== "number" || typeof claims.exp !== "number") return null;
  if (!["buyer", "seller", "admin"].includes(claims.role)) return null;
  if (!users.has(claims.sub)) return null;
  return { id: claims.sub, role: claims.role };
}

function handshakeToken(auth, headers) {
  if (auth && typeof auth.token === "string" && auth.token.trim()) return auth.token.trim();
  const h = headers.authorization;
  if (typeof h === "string" && h.trim().startsWith("Bearer ")) {
    const t = h.trim().slice(7).trim();
    if (t) return t;
  }
  const cookie = headers.cookie;
  if (typeof cookie === "string") {
    for (const pair of cookie.split(";")) {
      const i = pair.indexOf("=");
      if (i < 0) continue;
      const k = pair.slice(0, i).trim();
      const v = pair.slice(i + 1).trim().replace(/^"|"$/g, "");
      if (k === "token" && v) return v;
    }
  }
  return null;
}

function problem(res, status, title, detail) {
  res.writeHead(status, { "content-type": "application/problem+json" });
  res.end(JSON.stringify({ type: "about:blank", title, status, detail }));
}

function json(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

function readJson(req) {
  return new Promise((resolve) => {
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size > 64 * 1024) {
        req.destroy();
        resolve(undefined);
      } else chunks.push(c);
    });
    req.on("end", () => {
      try {
        const v = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        resolve(v && typeof v === "object" && !Array.isArray(v) ? v : undefined);
      } catch {
        resolve(undefined);
      }
    });
    req.on("error", () => resolve(undefined));
  });
}

function text(v, min, max) {
  if (typeof v !== "string") return null;
  const t = v.trim();
  const n = [...t].length;
  return n >= min && n <= max ? t : null;
}

async function register(req, res) {
  const body = await readJson(req);
  if (!body) return problem(res, 400, "Bad Request", "body must be a JSON object");
  const email = text(body.email, 3, 254);
  const name = text(body.name, 1, 100);
  const password = typeof body.password === "string" && body.password.length >= 8 ? body.password : null;
  const role = body.role === "buyer" || body.role === "seller" ? body.role : null;
  if (!email || !email.includes("@") || !name || !password || !role) {
    return problem(res, 422, "Unprocessable Entity", "email, password (8+), name and role buyer|seller are required");
  }
  const key = email.toLowerCase();
  if (byEmail.has(key)) return problem(res, 409, "Conflict", "email_taken");
  const user = await addUser({ email: key, password, name, role });
  json(res, 201, { token: issue(user), user: publicUser(user) });
}

async function login(req, res) {
  const body = await readJson(req);
  if (!body || typeof body.email !== "string" || typeof body.password !== "string") {
    return problem(res, 400, "Bad Request", "email and password are required");
  }
  const user = byEmail.get(body.email.trim().toLowerCase());
  const ok = user && timingSafeEqual(user.hash, await hashPassword(body.password, user.salt));
  if (!ok) return problem(res, 401, "Unauthorized", "wrong email or password");
  json(res, 200, { token: issue(user), user: publicUser(user) });
}

async function announce(req, res, io) {
  const caller = verify(req.headers.authorization?.startsWith("Bearer ") ? req.headers.authorization : undefined);
  if (!caller) return problem(res, 401, "Unauthorized", "a valid bearer token is required");
  if (caller.role !== "admin") return problem(res, 403, "Forbidden", "admins only");
  const body = await readJson(req);
  if (!body) return problem(res, 400, "Bad Request", "body must be a JSON object");
  const message = text(body.message, 1, 2000);
  if (message === null) return problem(res, 422, "Unprocessable Entity", "message: 1 to 2000 characters");
  io.emit("system:announcement", { message }, { id: nextEventId++, at: new Date().toISOString() });
  res.writeHead(202);
  res.end();
}

const http = createServer();
const io = new Server(http, { path: "/socket.io" });

http.on("request", (req, res) => {
  // socket.io's own listener answers /socket.io/ requests.
  if (req.url.startsWith("/socket.io/")) return;
  const path = req.url.split("?")[0];
  const route = `${req.method} ${path}`;
  const done = (p) => p.catch((e) => {
    console.error(e);
    if (!res.headersSent) problem(res, 500, "Internal Server Error", "unexpected");
  });
  switch (route) {
    case "GET /healthz":
      return json(res, 200, { status: "ok" });
    case "POST /api/auth/register":
      return done(register(req, res));
    case "POST /api/auth/login":
      return done(login(req, res));
    case "POST /api/admin/announcements":
      return done(announce(req, res, io));
    default:
      return problem(res, 404, "Not Found", "no such route");
  }
});

io.use((socket, next) => {
  const user = verify(handshakeToken(socket.handshake.auth, socket.handshake.headers));
  if (!user) return next(new Error("unauthorized: a valid token is required"));
  socket.data.user = user;
  next();
});

io.on("connection", (socket) => {
  const { id, role } = socket.data.user;
  const rooms = [`user-${id}`];
  if (role === "seller") rooms.push(`seller-${id}`, "sellers");
  else if (role === "buyer") rooms.push(`buyer-${id}`, "buyers");
  else if (role === "admin") rooms.push("admin");
  socket.join(rooms);
});

const adminEmail = process.env.ADMIN_EMAIL;
const adminPassword = process.env.ADMIN_PASSWORD;
if (adminEmail && adminPassword) {
  // Admins are never self-registered: seeded at start-up, as the marketplace server does.
  await addUser({ email: adminEmail.trim().toLowerCase(), password: adminPassword, name: "Admin", role: "admin" });
}

http.listen(PORT, "127.0.0.1", () => {
  console.log(`node socket.io peer listening on http://127.0.0.1:${PORT} (pid ${process.pid})`);
});
