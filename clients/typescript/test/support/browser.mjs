// Debian's Chromium (/usr/bin/chromium, or $CHROMIUM) driven by playwright-core: never a
// downloaded browser. `apt-get update && apt-get install -y chromium` when it is missing.
import { existsSync } from "node:fs";
import { createServer } from "node:http";
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

export async function launch() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get update && apt-get install -y chromium`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** A static server on `port` answering `files[path]` ({ type, body }), 404 otherwise. */
export function serveStatic(port, files) {
  const server = createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    const file = files[path] ?? files[`${path.replace(/\/$/, "")}/index.html`];
    if (!file) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": file.type, "cache-control": "no-store" }).end(file.body);
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)));
}
