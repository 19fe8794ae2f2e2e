#!/usr/bin/env bash
# The full test suite: formatting, lints, and every test of the workspace.
# Property-test cases: PROPTEST_CASES (default 2000 per property).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> cargo test"
cargo test --workspace --locked
