# shellcheck shell=bash
# Installs what Railyard's build and tests need, and skips whatever is already there.
# Sourced by scripts/start.sh and scripts/test.sh; every function is idempotent.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TRUNK_VERSION="0.21.14"
NEXTEST_VERSION="0.9.143"
# The wasm-bindgen CLI must match the crate pinned in app/Cargo.toml exactly.
WASM_BINDGEN_VERSION="$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' "$ROOT/app/Cargo.toml")"
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "root is needed to run: $*"
  fi
}

APT_UPDATED=""
apt_install() {
  [ $# -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || die "missing $*, and this is not a Debian-like system: install them yourself"
  say "installing Debian packages: $*"
  if [ -z "$APT_UPDATED" ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

have() { command -v "$1" >/dev/null 2>&1; }

pg_bin_present() {
  have initdb && have pg_ctl && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

# Debian packages for building and running the platform (embedded PostgreSQL included).
ensure_base_packages() {
  local missing=()
  have git || missing+=(git)
  have cc || missing+=(gcc libc6-dev)
  have brotli || missing+=(brotli)
  have gzip || missing+=(gzip)
  pg_bin_present || missing+=(postgresql)
  have psql || missing+=(postgresql-client)
  have node || missing+=(nodejs)
  have npm || missing+=(npm)
  [ -e /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
  apt_install "${missing[@]}"
}

# Extra packages for the test suite: Redis and Debian's Chromium for the browser tests.
ensure_test_packages() {
  local missing=()
  have redis-server || missing+=(redis-server)
  have redis-cli || missing+=(redis-tools)
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  # The deploy tests build a Python sample app in a virtualenv (Debian splits venv out).
  have python3 || missing+=(python3)
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
  # The build tests build a Go sample app with the host's Go.
  have go || missing+=(golang-go)
  apt_install "${missing[@]}"
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  [ "$major" -ge 20 ] || die "Playwright needs Node.js 20 or newer (found $(node --version)); install a newer nodejs"
}

ensure_cargo_tool() { # ensure_cargo_tool <binary> <expected --version output> <cargo install args...>
  local bin="$1" want="$2"
  shift 2
  if have "$bin" && [ "$("$bin" --version 2>/dev/null | head -n1)" = "$want" ]; then return 0; fi
  say "installing $want with cargo (this takes a while, once)"
  cargo install --force "$@"
}

# The wasm target, trunk, the matching wasm-bindgen CLI, and wasm-opt from npm's binaryen
# (Debian's binaryen breaks the app; see docs/ARCHITECTURE.md).
ensure_build_tools() {
  rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown ||
    rustup target add wasm32-unknown-unknown
  ensure_cargo_tool trunk "trunk $TRUNK_VERSION" --locked "trunk@$TRUNK_VERSION"
  ensure_cargo_tool wasm-bindgen "wasm-bindgen $WASM_BINDGEN_VERSION" "wasm-bindgen-cli@$WASM_BINDGEN_VERSION"
  npm_ci "$ROOT/scripts/node"
}

ensure_test_tools() {
  if ! cargo nextest --version >/dev/null 2>&1; then
    say "installing cargo-nextest $NEXTEST_VERSION"
    cargo install --locked "cargo-nextest@$NEXTEST_VERSION"
  fi
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm_ci "$ROOT/e2e"
}

# `npm ci` when node_modules is missing or older than the lockfile.
npm_ci() {
  local dir="$1"
  if [ -f "$dir/node_modules/.package-lock.json" ] && [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
    return 0
  fi
  say "installing npm packages in ${dir#"$ROOT"/}"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
}

# Builds the dashboard into dist/ with Trunk, offline.
build_dashboard() {
  say "building the dashboard (trunk build --release)"
  (cd "$ROOT" && PATH="$ROOT/scripts/node/node_modules/.bin:$PATH" TRUNK_SKIP_VERSION_CHECK=true \
    trunk --config Trunk.toml build --release)
}

free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
