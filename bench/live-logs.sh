#!/usr/bin/env bash
# Live logs: an app printing 5,000 lines/s for 60 s (BENCH_SECS) with 50 WebSocket viewers;
# prints lines delivered per viewer, drops, and stdout -> viewer latency p50/p99.
# Target: 5,000 lines/s sustained, p99 <= 250 ms, 0 drops for viewers that keep up.
# Needs the PostgreSQL of scripts/test.sh (TEST_DATABASE_URL, default 127.0.0.1:5432) and node.
set -euo pipefail
cd "$(dirname "$0")/.."
# Apps run under the server binary's monitor (`railyard-server monitor`).
cargo build --quiet --release -p railyard-server --bin railyard-server
exec cargo run --quiet --release -p railyard-server --features test-support --example live_logs
