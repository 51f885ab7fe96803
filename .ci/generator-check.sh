#!/usr/bin/env bash
# CI: the module generator end to end, in a scratch copy of this tree (committed or not):
# `cargo xtask new-module wishlists`, then the workspace builds, the generated code passes
# rustfmt and clippy, the new module's own test passes, its routes are in the OpenAPI
# document with operationIds of their own, and a second run with the same name is refused. Runs alone:
# `.ci/generator-check.sh` (a few minutes: the copy shares this tree's target directory, so
# only the crates the generator touched are compiled again).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TERM_COLOR=never
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
name=${GENERATOR_CHECK_NAME:-wishlists}
path=${name//_/-}

scratch=$(mktemp -d "${TMPDIR:-/tmp}/generator-check.XXXXXX")
restore() {
  rm -rf "$scratch"
  # The copy's build replaced target/debug/marketplace (the cluster tests run it) and some
  # shared artifacts with its own; build this tree's again.
  echo "== restoring this tree's marketplace binary"
  (cd "$root" && cargo build -q --workspace --bin marketplace)
}
trap restore EXIT

echo "== copying the tree (without target/ and .git/) to $scratch"
tar -C "$root" --exclude=./target --exclude=./.git --exclude=node_modules -cf - . |
  tar -C "$scratch" -xf -
cd "$scratch"

echo "== cargo xtask new-module $name"
cargo xtask new-module "$name"

echo "== the same name again is refused"
if cargo xtask new-module "$name" >/dev/null 2>&1; then
  echo "a second \`cargo xtask new-module $name\` was accepted" >&2
  exit 1
fi

echo "== cargo build (the whole workspace, with the new module)"
cargo build --workspace

echo "== rustfmt and clippy on what the generator wrote"
cargo fmt --all -- --check
cargo clippy -p "$name" -p migrations -p marketplace-api --all-targets -- -D warnings
cargo clippy -p marketplace-tests --test suite -- -D warnings

echo "== README's module graph was brought up to date by the generator"
cargo xtask graph --check

echo "== the generated test"
cargo test -p marketplace-tests --test suite -- "$name::"

echo "== the OpenAPI document (marketplace openapi) has the new routes"
doc=$(cargo run -q -p marketplace-api --bin marketplace -- openapi)
for route in "\"/api/$path\"" "\"/api/$path/{id}\""; do
  if ! grep -qF "$route" <<<"$doc"; then
    echo "the OpenAPI document has no $route" >&2
    exit 1
  fi
done
# Every operationId stays unique (client generators name functions after them).
if ! python3 -c 'import json,sys,collections; d=json.load(sys.stdin); ids=[op.get("operationId") for p in d["paths"].values() for op in p.values() if isinstance(op, dict) and "responses" in op]; dup=[i for i,n in collections.Counter(ids).items() if n>1 or i is None]; sys.exit(f"operationIds not unique: {dup}" if dup else 0)' <<<"$doc"; then
  exit 1
fi
echo "generator check passed"
