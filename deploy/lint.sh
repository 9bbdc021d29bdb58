#!/usr/bin/env bash
# Offline lint of deploy/template.yaml: `sam validate --lint`, then cfn-lint on its translation to plain CloudFormation.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Pinned together: aws-sam-cli 1.170.0 requires aws-sam-translator==1.115.0 and
# cfn-lint>=1.52.0,<1.59. Kept in their own venv (.venv holds the pinned moto).
VENV=.venv-sam
PINS=(aws-sam-cli==1.170.0 aws-sam-translator==1.115.0 cfn-lint==1.58.0)

pinned() {
  "$VENV/bin/python" - "${PINS[@]}" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(any(version(n) != v for n, v in (p.split("==") for p in sys.argv[1:])))
EOF
}

if ! pinned; then
  sudo=$([ "$(id -u)" = 0 ] || echo sudo)
  python3 -m venv "$VENV" 2>/dev/null || { $sudo apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv && python3 -m venv "$VENV"; }
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PINS[@]}"
fi

# Nothing below may reach AWS or anywhere else: dummy credentials and region, no user
# AWS config, no telemetry, and a proxy that refuses every connection (SAM CLI's weekly
# version check fails quietly; anything that needed the network would fail the lint).
export AWS_ACCESS_KEY_ID=lint AWS_SECRET_ACCESS_KEY=lint
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN
export SAM_CLI_TELEMETRY=0
export HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY= \
  http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 no_proxy=

out=target/deploy/template.cfn.json

echo "== sam validate --lint (the SAM template)"
"$VENV/bin/sam" validate --lint --template deploy/template.yaml --region us-east-1

echo "== aws-sam-translator -> $out"
"$VENV/bin/python" deploy/translate.py deploy/template.yaml "$out"

# deploy/cfn-lint-rules adds E9001: each consumer queue's visibility is >= 6x its
# function's timeout. Warnings fail too (cfn-lint's exit code); none is ignored.
echo "== cfn-lint (the translated CloudFormation)"
"$VENV/bin/cfn-lint" --append-rules deploy/cfn-lint-rules -- "$out"

echo "deploy lint: passed"
