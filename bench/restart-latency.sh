#!/usr/bin/env bash
# Crash -> restarted for a supervised app (issue: runtime and router); target p50 <= 150 ms.
# Needs the PostgreSQL of scripts/test.sh (TEST_DATABASE_URL, default 127.0.0.1:5432) and node.
set -euo pipefail
cd "$(dirname "$0")/.."
# Apps run under the server binary's monitor (`railyard-server monitor`).
cargo build --quiet --release -p railyard-server --bin railyard-server
exec cargo run --quiet --release -p railyard-server --features test-support --example restart_latency
