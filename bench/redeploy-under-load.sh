#!/usr/bin/env bash
# 20 redeploys (5 with a failing health check) under a constant request stream through the
# router (issue: runtime and router). Target: 0 failed requests, and the 5 failed deploys leave
# the serving release in place.
# Needs the PostgreSQL of scripts/test.sh (TEST_DATABASE_URL, default 127.0.0.1:5432) and node.
set -euo pipefail
cd "$(dirname "$0")/.."
# Apps run under the server binary's monitor (`railyard-server monitor`).
cargo build --quiet --release -p railyard-server --bin railyard-server
exec cargo run --quiet --release -p railyard-server --features test-support --example redeploy_under_load
