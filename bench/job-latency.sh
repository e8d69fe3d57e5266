#!/usr/bin/env bash
# Enqueue -> worker-start latency of the durable job queue (issue: deploy pipeline).
# Needs the PostgreSQL of scripts/test.sh (TEST_DATABASE_URL, default 127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --quiet --release -p railyard-server --features test-support --example job_latency
