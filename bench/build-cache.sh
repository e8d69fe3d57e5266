#!/usr/bin/env bash
# Second build of an unchanged app vs its first, with the build cache (issue: builds): a Rust
# app with dependencies (target/ kept) and a Node.js app with a lockfile (node_modules
# reused). Prints both times and the ratio; target <= 0.2. Needs the PostgreSQL of
# scripts/test.sh (TEST_DATABASE_URL, default 127.0.0.1:5432), node and cargo, and the package
# registries (crates.io, npm) for the first builds.
set -euo pipefail
cd "$(dirname "$0")/.."
# Apps run under the server binary's monitor (`railyard-server monitor`).
cargo build --quiet --release -p railyard-server --bin railyard-server
exec cargo run --quiet --release -p railyard-server --features test-support --example build_cache
