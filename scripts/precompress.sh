#!/usr/bin/env bash
# Trunk post_build hook: brotli and gzip every compressible asset in the staging dir, so
# the server (tower-http ServeDir with precompressed_br/gzip) never compresses on the fly.
set -euo pipefail
dir="${TRUNK_STAGING_DIR:?run by trunk as a post_build hook}"
find "$dir" -type f \( -name '*.js' -o -name '*.wasm' -o -name '*.css' -o -name '*.html' -o -name '*.svg' -o -name '*.json' \) -print0 |
  while IFS= read -r -d '' file; do
    brotli --force --best --keep --output="$file.br" -- "$file"
    gzip --force --best --keep --no-name -- "$file"
  done
