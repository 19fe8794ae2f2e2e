#!/usr/bin/env bash
# The full test suite: formatting, lints, and every test of the workspace.
# It installs moto (PyPI) when missing, starts it on a free loopback port for the
# contract suite (MOTO_ENDPOINT), and stops it on exit; it installs Chromium and
# chromedriver (Debian) when missing, for the console's browser test. dynoxide runs inside the
# tests themselves. Property-test cases: PROPTEST_CASES (memory, default 2000) and
# DYNOXIDE_PROPTEST_CASES (dynoxide, default 200); generated inputs at the edges:
# GENERATED_CASES (default 2000 per edge).
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION="5.2.1"
CFN_LINT_VERSION="1.58.0"
CFN_LINT_SERVERLESS_VERSION="0.3.6"
SAM_CLI_VERSION="1.170.0"

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

# The deployment template, with the serverless rules, in every relay mode, with
# the outbox in a table of its own, and on a Custom Event Bus, and its nested
# stacks: 0 errors and 0 warnings.
# cfn-lint runs through the interpreter, so a console script without a shim yet
# (pyenv before a rehash) cannot make it go missing.
cfn_lint() {
  python3 -c 'import sys; from cfnlint.runner import main; sys.argv[0] = "cfn-lint"; sys.exit(main())' "$@"
}
# sam runs through the interpreter too, for the same reason.
sam() {
  SAM_CLI_TELEMETRY=0 python3 -c 'import sys; from samcli.cli.main import cli; sys.argv[0] = "sam"; sys.exit(cli())' "$@"
}
if [[ "$(cfn_lint --version 2>/dev/null)" != "cfn-lint ${CFN_LINT_VERSION}" ]] \
  || ! python3 -c "import cfn_lint_serverless" 2>/dev/null \
  || [[ "$(python3 -c 'import samcli; print(samcli.__version__)' 2>/dev/null)" != "${SAM_CLI_VERSION}" ]]; then
  echo "==> pip install cfn-lint==${CFN_LINT_VERSION} cfn-lint-serverless==${CFN_LINT_SERVERLESS_VERSION} aws-sam-cli==${SAM_CLI_VERSION}"
  python3 -m pip install --quiet "cfn-lint==${CFN_LINT_VERSION}" \
    "cfn-lint-serverless==${CFN_LINT_SERVERLESS_VERSION}" "aws-sam-cli==${SAM_CLI_VERSION}"
fi
# The main template in every commercial region cfn-lint knows (a region
# lacking a type it names would fail it; the variants name the same types, so
# the others are linted in one region); the nested stacks (the Custom Event
# Bus, the pipe) in the regions that have their types, which
# docs/deploy.md#regions lists.
all_regions="$(python3 scripts/regions.py)"
regions="$all_regions"
rm -rf target/lint && mkdir -p target/lint && cp -r stacks target/lint/
for variant in Lambda Pipe Lambda-separate-outbox Lambda-custom-bus; do
  mode="${variant%%-*}"
  separate="false"
  [[ "$variant" == *separate-outbox ]] && separate="true"
  bus="Classic"
  [[ "$variant" == *custom-bus ]] && bus="Custom"
  sed -e "/^  RelayMode:/,/Default:/ s/Default: .*/Default: ${mode}/" \
      -e "/^  SeparateOutboxTable:/,/Default:/ s/Default: .*/Default: \"${separate}\"/" \
      -e "/^  EventBusKind:/,/Default:/ s/Default: .*/Default: ${bus}/" \
      template.yaml > "target/lint/template-${variant}.yaml"
  echo "==> cfn-lint template.yaml (RelayMode=${mode}, SeparateOutboxTable=${separate}, EventBusKind=${bus}), $(wc -w <<<"$regions") regions"
  # shellcheck disable=SC2086 # one argument per region
  cfn_lint "target/lint/template-${variant}.yaml" -a cfn_lint_serverless.rules --regions $regions
  regions="us-east-1"
done
for stack in stacks/*.yaml; do
  regions="$(python3 scripts/regions.py "$stack")"
  echo "==> cfn-lint ${stack}, $(wc -w <<<"$regions") regions: ${regions}"
  # shellcheck disable=SC2086 # one argument per region
  cfn_lint "$stack" -a cfn_lint_serverless.rules --regions $regions
done

# SAM's own validation and lint of the template as written, then the template
# as SAM expands it for CloudFormation, held to least privilege.
echo "==> sam validate --lint template.yaml"
sam validate --lint --template template.yaml --region us-east-1
echo "==> least privilege, as deployed"
python3 scripts/least_privilege.py template.yaml stacks/*.yaml

if [[ -z "${MOTO_ENDPOINT:-}" ]]; then
  if ! python3 -c "import moto.server" 2>/dev/null; then
    echo "==> pip install moto[server]==${MOTO_VERSION}"
    python3 -m pip install --quiet "moto[server]==${MOTO_VERSION}"
  fi
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  python3 scripts/moto_serial.py 127.0.0.1 "$port" >target/moto.log 2>&1 &
  moto_pid=$!
  trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
  export MOTO_ENDPOINT="http://127.0.0.1:${port}"
  for _ in $(seq 1 100); do
    if python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1] + '/moto-api/')" "$MOTO_ENDPOINT" 2>/dev/null; then
      break
    fi
    kill -0 "$moto_pid" 2>/dev/null || { echo "moto failed to start:" >&2; cat target/moto.log >&2; exit 1; }
    sleep 0.2
  done
  echo "==> moto serving at ${MOTO_ENDPOINT}"
fi

# The console's browser test drives headless Chromium through chromedriver
# (Debian's packages); it fails, not skips, without them.
if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
  echo "==> apt-get install chromium chromium-driver"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
fi

echo "==> cargo test"
cargo test --workspace --locked --no-fail-fast
