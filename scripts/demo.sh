#!/usr/bin/env bash
# `make demo`: build, fetch the default model pack, and start facegate with its embedded defaults
# (SQLite in ./facegate-data) and a demo account. Idempotent; Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p facegate-server
F=target/release/facegate
$F models fetch >/dev/null
export FACEGATE_DATA=${FACEGATE_DATA:-./facegate-data} FACEGATE_LISTEN=${FACEGATE_LISTEN:-127.0.0.1:8080}
# The liveness check is not built yet; the demo lets a single picture sign in so face login can be tried.
export FACEGATE_LIVENESS=${FACEGATE_LIVENESS:-off}
PORT=${FACEGATE_LISTEN##*:}
if ! $F client list | grep -q " demo-cli "; then
  echo "demo-password-2026" | $F user add --username demo --email demo@example.com --name "Demo Person" --email-verified --password-stdin >/dev/null 2>&1 || true
  $F client add --name demo-cli --redirect-uri http://localhost:9/demo-callback --skip-consent >/dev/null
fi
CLIENT=$($F client list | awk '$2 == "demo-cli" {print $1}')
cat <<MSG

facegate is starting on http://localhost:$PORT (data in $FACEGATE_DATA)
  discovery:  http://localhost:$PORT/.well-known/openid-configuration
  sign in:    http://localhost:$PORT/login    as  demo / demo-password-2026
  your faces: http://localhost:$PORT/account  (enrol with the camera, then try "Sign in with your face")
  NOTE: this demo runs with FACEGATE_LIVENESS=off: a photo of an enrolled face can sign in. Liveness
        checks come with the next issue; without this setting face login is refused.
  a login for the registered demo client (the browser ends on an unreachable localhost:9 URL whose
  query holds the authorization code):
    http://localhost:$PORT/authorize?client_id=$CLIENT&redirect_uri=http%3A%2F%2Flocalhost%3A9%2Fdemo-callback&response_type=code&scope=openid%20email&state=demo
  add your own application:  $F client add --name APP --redirect-uri URL
The notes app and single-page demo relying parties arrive with a later issue.
Ctrl-C stops facegate.

MSG
exec $F serve
