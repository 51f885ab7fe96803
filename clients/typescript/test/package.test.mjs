// The package as a frontend installs it: `npm pack` gives a tarball that installs into an
// empty project, loads as ESM in node, and type-checks a strict consumer (test/consumer)
// whose `@ts-expect-error` lines really are errors.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const tsc = join(root, "node_modules/typescript/bin/tsc");
const MARKER = "// @ts-expect-error";
let dir;
let tarball;

const version = (name) => JSON.parse(readFileSync(join(root, "node_modules", name, "package.json"), "utf8")).version;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "marketplace-client-consumer-"));
  // The build is done (npm test runs on dist/): pack it as it is.
  const { stdout } = await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], { cwd: root });
  const [packed] = JSON.parse(stdout);
  tarball = packed;
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
  await run(
    "npm",
    [
      "install",
      "--no-audit",
      "--no-fund",
      "--prefer-offline",
      join(dir, packed.filename),
      `react@${version("react")}`,
      `@types/react@${version("@types/react")}`,
    ],
    { cwd: dir },
  );
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("the tarball holds the ESM build, its declarations and the README, and no tests", () => {
  const files = tarball.files.map((f) => f.path);
  for (const f of ["package.json", "README.md", "dist/index.js", "dist/index.d.ts", "dist/react.js", "dist/react.d.ts", "dist/generated/api.d.ts", "dist/generated/openapi.d.ts"]) {
    assert.ok(files.includes(f), `${f} missing from the tarball: ${files.join(" ")}`);
  }
  assert.ok(!files.some((f) => f.startsWith("test/") || f.startsWith("scripts/")), files.join(" "));
});

test("the installed package loads as ESM, with its React entry", async () => {
  const script = `
    const sdk = await import("@marketplace/client");
    const react = await import("@marketplace/client/react");
    const client = sdk.createClient({ baseUrl: "http://127.0.0.1:9" });
    console.log(JSON.stringify({
      createClient: typeof sdk.createClient,
      rest: typeof client.rest.GET,
      state: client.status.state,
      provider: typeof react.MarketplaceProvider,
      hook: typeof react.useMarketplaceEvent,
      connection: typeof react.useConnectionState,
    }));`;
  const { stdout } = await run("node", ["--input-type=module", "-e", script], { cwd: dir });
  assert.deepEqual(JSON.parse(stdout), {
    createClient: "function",
    rest: "function",
    state: "disconnected",
    provider: "function",
    hook: "function",
    connection: "function",
  });
});

/** tsc --strict --noEmit on `files` inside the consumer project, in one program; answers [ok, output]. */
async function check(files) {
  const config = join(dir, "tsconfig.json");
  writeFileSync(
    config,
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        target: "es2022",
        module: "nodenext",
        moduleResolution: "nodenext",
        lib: ["es2022", "dom"],
        types: [],
        noUncheckedIndexedAccess: true,
        exactOptionalPropertyTypes: true,
        skipLibCheck: true,
      },
      files,
    }),
  );
  try {
    const { stdout, stderr } = await run("node", [tsc, "-p", config], { cwd: dir });
    return [true, stdout + stderr];
  } catch (e) {
    return [false, `${e.stdout ?? ""}${e.stderr ?? ""}`];
  }
}

test("a strict consumer compiles, and each @ts-expect-error line is really an error", async () => {
  const source = readFileSync(join(root, "test/consumer/consumer.ts"), "utf8");
  writeFileSync(join(dir, "consumer.ts"), source);
  // Compiled together with a copy without its directives (one tsc run): the consumer has no
  // error, and in the copy exactly the marked lines fail.
  const expected = [];
  const loose = [];
  let marked = false;
  for (const line of source.split("\n")) {
    if (line.trim().startsWith(MARKER)) {
      marked = true;
      continue;
    }
    loose.push(line);
    if (marked) expected.push(loose.length);
    marked = false;
  }
  writeFileSync(join(dir, "loose.ts"), loose.join("\n"));
  const [looseOk, looseOut] = await check(["consumer.ts", "loose.ts"]);
  assert.ok(!looseOk, "the misuses compiled");
  assert.ok(!/^consumer\.ts\(/m.test(looseOut), `tsc --strict failed on the consumer:\n${looseOut}`);
  const failed = [
    ...new Set(
      looseOut
        .split("\n")
        .map((l) => /^loose\.ts\((\d+),/.exec(l)?.[1])
        .filter(Boolean)
        .map(Number),
    ),
  ].sort((a, b) => a - b);
  assert.ok(expected.length >= 10, `too few misuses: ${expected}`);
  assert.deepEqual(failed, expected, looseOut);
});
