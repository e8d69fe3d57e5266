#!/usr/bin/env bash
# Quickstart command 1: install what is missing, build the dashboard and the server in
# release mode, and run `railyard-server serve` on embedded defaults (a private
# PostgreSQL under the data directory, no Redis). Configuration: see .env.example.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

ensure_base_packages
ensure_build_tools
build_dashboard
say "building the server (release)"
(cd "$ROOT" && cargo build --release --locked -p railyard-server)

# As root, the embedded PostgreSQL runs as the unprivileged `postgres` user, which must be
# able to reach the data directory; a checkout under /root is not reachable, so default to
# /var/lib/railyard there.
if [ -z "${RAILYARD_DATA_DIR:-}" ] && [ -z "${DATABASE_URL:-}" ] && [ "$(id -u)" -eq 0 ] &&
  ! runuser -u postgres -- test -x "$ROOT" 2>/dev/null; then
  export RAILYARD_DATA_DIR=/var/lib/railyard
  say "the postgres user cannot reach $ROOT; keeping data in $RAILYARD_DATA_DIR"
fi

cd "$ROOT"
exec "$ROOT/target/release/railyard-server" serve
