#!/usr/bin/env bash
# Builds every Lambda function as a `bootstrap` zip for provided.al2023 on arm64,
# offline, with cargo-lambda (PyPI; it brings its own zig). The zips land in
# target/lambda/<function>/bootstrap.zip (`sam build` builds the same binaries
# itself, in template.yaml's CodeUri, the reference crate).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_LAMBDA_VERSION="1.9.2"
# One binary serves every consumer; each consumer function sets CONSUMER_NAME.
FUNCTIONS=(command-api outbox-relay outbox-consumer)

if ! command -v cargo-lambda >/dev/null 2>&1; then
  echo "==> pip install cargo-lambda==${CARGO_LAMBDA_VERSION}"
  python3 -m pip install --quiet "cargo-lambda==${CARGO_LAMBDA_VERSION}"
  # A pyenv interpreter needs its shims refreshed to find the new command.
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
fi

args=()
for function in "${FUNCTIONS[@]}"; do
  args+=(--bin "$function")
done
echo "==> cargo lambda build --release --arm64 --output-format zip"
cargo lambda build --release --arm64 --output-format zip --locked -p outbox-reference "${args[@]}"

for function in "${FUNCTIONS[@]}"; do
  zip="target/lambda/${function}/bootstrap.zip"
  [[ -f "$zip" ]] || { echo "package: ${zip} was not built" >&2; exit 1; }
  printf '%-26s %8d bytes\n' "$function" "$(stat -c %s "$zip")"
done
