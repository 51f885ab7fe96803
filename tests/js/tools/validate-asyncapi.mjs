// Validates an AsyncAPI document with the official parser (@asyncapi/parser).
// Usage: node tools/validate-asyncapi.mjs <file.json | URL>. Prints every diagnostic; exits 1
// when there is any error (severity 0) and 0 otherwise.
import { readFile } from "node:fs/promises";
import { Parser } from "@asyncapi/parser";

const source = process.argv[2];
if (!source) {
  console.error("usage: validate-asyncapi.mjs <file.json | URL>");
  process.exit(2);
}
const text = /^https?:\/\//.test(source)
  ? await (await fetch(source)).text()
  : await readFile(source, "utf8");
const parser = new Parser();
const { document, diagnostics } = await parser.parse(text);
const label = ["error", "warning", "info", "hint"];
for (const d of diagnostics) {
  console.log(`${label[d.severity] ?? d.severity} ${d.code} at /${d.path.join("/")}: ${d.message}`);
}
const errors = diagnostics.filter((d) => d.severity === 0);
if (!document || errors.length > 0) {
  console.log(`INVALID: ${errors.length} error(s)`);
  process.exit(1);
}
console.log(`VALID: AsyncAPI ${document.version()}, ${document.allMessages().length} messages, ${diagnostics.length} other diagnostic(s)`);
