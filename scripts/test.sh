#!/usr/bin/env bash
# Quickstart command 2: every test. Installs what is missing, then runs formatting and
# lint checks, the browser tests (real server, real PostgreSQL and Redis, headless
# Chromium), and the unit and integration tests with cargo nextest (last, so its summary
# is the final line). Uses the PostgreSQL on 127.0.0.1:5432 and the Redis on
# 127.0.0.1:6379 when they answer, and starts private ones otherwise.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

ensure_base_packages
ensure_test_packages
ensure_build_tools
ensure_test_tools

CLEANUP=()
cleanup() { local i; for ((i = ${#CLEANUP[@]} - 1; i >= 0; i--)); do eval "${CLEANUP[$i]}" || true; done; }
trap cleanup EXIT

# --- PostgreSQL --------------------------------------------------------------------------
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if ! PGCONNECT_TIMEOUT=3 psql "$TEST_DATABASE_URL" -Atqc 'SELECT 1' >/dev/null 2>&1; then
  say "no usable PostgreSQL at $TEST_DATABASE_URL; starting a private one"
  pg_bin="$(dirname "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)")"
  pg_dir="$(mktemp -d /tmp/railyard-test-pg.XXXXXX)"
  chmod 755 "$pg_dir"
  pg_port="$(free_port)"
  run_pg=()
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$pg_dir"; run_pg=(runuser -u postgres --); fi
  "${run_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --auth=trust --no-locale -E UTF8 >/dev/null
  "${run_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w \
    -o "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$pg_dir" start >/dev/null
  CLEANUP+=("${run_pg[*]} '$pg_bin/pg_ctl' -D '$pg_dir/data' -m fast -w stop >/dev/null; rm -rf '$pg_dir'")
  export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"
fi

# --- Redis -------------------------------------------------------------------------------
export TEST_REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379}"
redis_hostport="${TEST_REDIS_URL#redis://}"
if [ "$(redis-cli -h "${redis_hostport%:*}" -p "${redis_hostport##*:}" ping 2>/dev/null)" != "PONG" ]; then
  say "no Redis at $TEST_REDIS_URL; starting a private one"
  redis_port="$(free_port)"
  redis_pid="$(mktemp /tmp/railyard-test-redis.XXXXXX)"
  redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
    --daemonize yes --pidfile "$redis_pid" --dir /tmp >/dev/null
  CLEANUP+=("redis-cli -p $redis_port shutdown nosave >/dev/null 2>&1; rm -f '$redis_pid'")
  for _ in $(seq 50); do [ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
  export TEST_REDIS_URL="redis://127.0.0.1:$redis_port"
fi

cd "$ROOT"

# --- Static checks -----------------------------------------------------------------------
say "cargo fmt --check"
cargo fmt --all --check
say "cargo clippy (server, CLI, shared; then the dashboard for wasm32)"
cargo clippy --locked --all-targets -- -D warnings
cargo clippy --locked -p railyard-app --target wasm32-unknown-unknown -- -D warnings

# --- Browser tests -----------------------------------------------------------------------
build_dashboard
say "building the server for the browser tests"
cargo build --locked -p railyard-server
e2e_db="railyard_e2e_$$"
psql "$TEST_DATABASE_URL" -Atqc "CREATE DATABASE $e2e_db" >/dev/null
CLEANUP+=("psql '$TEST_DATABASE_URL' -Atqc 'DROP DATABASE IF EXISTS $e2e_db WITH (FORCE)' >/dev/null")
# Apps the browser tests deploy outlive their server by design (as apps outlive a control-plane
# restart): stop them at the end. Each app's monitor leads its process group.
CLEANUP+=("for pid in \$(pgrep -f 'railyard-server monitor --dir $ROOT/e2e/artifacts/data/'); do kill -KILL -- \"-\$pid\" 2>/dev/null; done")
rm -rf "$ROOT/e2e/artifacts"
mkdir -p "$ROOT/e2e/artifacts"
say "browser tests (Playwright, /usr/bin/chromium)"
(
  cd "$ROOT/e2e"
  DATABASE_URL="${TEST_DATABASE_URL%/*}/$e2e_db" \
    REDIS_URL="$TEST_REDIS_URL" \
    RAILYARD_E2E_PORT="$(free_port)" \
    RAILYARD_E2E_ROUTER_PORT="$(free_port)" \
    FAKE_GITHUB_PORT="$(free_port)" \
    RAILYARD_SERVER_BIN="$ROOT/target/debug/railyard-server" \
    RAILYARD_DASHBOARD_DIR="$ROOT/dist" \
    RAILYARD_DATA_DIR="$ROOT/e2e/artifacts/data" \
    ./node_modules/.bin/playwright test
)
say "screenshots: e2e/artifacts/*.png"

# --- Unit and integration tests (last: its summary is the counted line) -------------------
say "cargo nextest run"
cargo nextest run --locked --no-fail-fast
