#!/usr/bin/env bash
# Promotion apply -> first 200 of the promoted commit through the router, for a no-build Node
# app (issue: environments). p50/p95 over 20 runs; target p50 <= 200 ms.
# Needs the PostgreSQL of scripts/test.sh (TEST_DATABASE_URL, default 127.0.0.1:5432) and node.
set -euo pipefail
cd "$(dirname "$0")/.."
# Apps run under the server binary's monitor (`railyard-server monitor`).
cargo build --quiet --release -p railyard-server --bin railyard-server
exec cargo run --quiet --release -p railyard-server --features test-support --example promote_latency
