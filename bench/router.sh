#!/usr/bin/env bash
# Railyard's router (inside `serve`, and alone as `railyard-server router`) vs the app directly vs nginx: requests/s and p99 at 1 and 50 connections,
# measured with wrk (issue: runtime and router). nginx and wrk come from Debian's packages and
# are used for this comparison only. BENCH_SECONDS sets each run's length (default 5).
# Needs the PostgreSQL of scripts/test.sh (TEST_DATABASE_URL, default 127.0.0.1:5432) and node.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
have wrk || apt_install wrk
have nginx || [ -x /usr/sbin/nginx ] || apt_install nginx
export PATH="$PATH:/usr/sbin"
cargo build --quiet --release -p railyard-server --bin railyard-server
RAILYARD_BIN="$PWD/target/release/railyard-server" \
  exec cargo run --quiet --release -p railyard-server --features test-support --example router_load
