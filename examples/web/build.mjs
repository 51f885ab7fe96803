// Bundles the page into dist/ with esbuild: dist/index.html, dist/app.js, dist/app.css.
// Everything comes from npm (no CDN); dist/ is plain static files for any static server.
// `--watch` rebuilds on change.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "dist");
mkdirSync(out, { recursive: true });

// One React: the SDK is linked from clients/typescript (which has React of its own for its
// tests), so React is always resolved from this project.
const oneReact = {
  name: "one-react",
  setup(build) {
    build.onResolve({ filter: /^(react|react-dom|scheduler)(\/.*)?$/ }, (args) =>
      args.resolveDir.startsWith(here) && !args.resolveDir.includes("node_modules/@marketplace")
        ? undefined
        : build.resolve(args.path, { kind: args.kind, resolveDir: here }),
    );
  },
};

const options = {
  entryPoints: { app: join(here, "src/main.tsx") },
  outdir: out,
  bundle: true,
  format: "esm",
  target: "es2022",
  jsx: "automatic",
  minify: true,
  sourcemap: true,
  legalComments: "linked",
  define: { "process.env.NODE_ENV": '"production"' },
  plugins: [oneReact],
  logLevel: "info",
};

for (const f of ["index.html", "app.css"]) copyFileSync(join(here, "src", f), join(out, f));
if (process.argv.includes("--watch")) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
}
