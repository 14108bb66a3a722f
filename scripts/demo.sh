#!/usr/bin/env bash
# `make demo`: build, fetch the default model pack if missing, start facegate (SQLite in ./facegate-data)
# with a demo account, register the two example relying parties and examples/secretly's API client
# (idempotently), start them, and print the URLs to open. Ctrl-C stops everything.
#   FACEGATE_LISTEN (127.0.0.1:8080), NOTES_PORT (8081), SPA_PORT (8082), SECRETLY_PORT (8083),
#   FACEGATE_DATA (./facegate-data)
set -euo pipefail
cd "$(dirname "$0")/.."
${CARGO:-cargo} build --release -q -p facegate-server -p facegate-example-notes
F=target/release/facegate
$F models fetch >/dev/null
export FACEGATE_DATA=${FACEGATE_DATA:-./facegate-data} FACEGATE_LISTEN=${FACEGATE_LISTEN:-127.0.0.1:8080}
# Liveness is on, as by default: face login runs the check with your camera. FACEGATE_LIVENESS=off
# (set before make demo) would let a single photo sign in instead.
PORT=${FACEGATE_LISTEN##*:}
export FACEGATE_ISSUER=${FACEGATE_ISSUER:-http://localhost:$PORT}
# The demo lets anyone open an account (sign-up is off by default); with no SMTP server set, the
# confirmation and reset mails are written to $FACEGATE_DATA/outbox/.
export FACEGATE_SIGNUP=${FACEGATE_SIGNUP:-open}
NOTES_PORT=${NOTES_PORT:-8081} SPA_PORT=${SPA_PORT:-8082}
NOTES_URL=http://localhost:$NOTES_PORT SPA_URL=http://localhost:$SPA_PORT
mkdir -p "$FACEGATE_DATA"

echo "demo-password-2026" | $F user add --username demo --email demo@example.com --name "Demo Person" --email-verified --password-stdin >/dev/null 2>&1 || true

# The id of the client called $1 whose first redirect URI is $2 (empty if none).
client_id() { $F client list | awk -v n="$1" -v r="$2" '$2 == n && $4 == r { print $1; exit }'; }
# Removes every client called $1 (a stale registration, e.g. other ports).
remove_clients() { $F client list | awk -v n="$1" '$2 == n { print $1 }' | while read -r id; do $F client remove "$id" >/dev/null; done; }

# The notes app: a confidential client. Its secret is shown only at registration, so it is kept in
# $FACEGATE_DATA/demo-notes.secret (mode 600); without that file the client is registered anew.
SECRET_FILE=$FACEGATE_DATA/demo-notes.secret
NOTES_ID=$(client_id demo-notes "$NOTES_URL/callback")
if [ -z "$NOTES_ID" ] || [ ! -s "$SECRET_FILE" ]; then
  remove_clients demo-notes
  out=$($F client add --name demo-notes --redirect-uri "$NOTES_URL/callback" --post-logout-redirect-uri "$NOTES_URL/" --skip-consent)
  NOTES_ID=$(awk '/^client_id:/ { print $2 }' <<<"$out")
  (umask 077; awk '/^client_secret:/ { print $2 }' <<<"$out" >"$SECRET_FILE")
fi
# The single-page app: a public client (no secret; PKCE).
SPA_ID=$(client_id demo-spa "$SPA_URL/callback")
if [ -z "$SPA_ID" ]; then
  remove_clients demo-spa
  SPA_ID=$($F client add --name demo-spa --public --redirect-uri "$SPA_URL/callback" --post-logout-redirect-uri "$SPA_URL/" --skip-consent | awk '/^client_id:/ { print $2 }')
fi

# examples/secretly (notes by face through the Rekognition-compatible API): an API client with an AWS
# access key, kept in $FACEGATE_DATA/demo-secretly.key (mode 600); made anew when that file is missing.
SECRETLY_PORT=${SECRETLY_PORT:-8083} SECRETLY_URL=http://localhost:${SECRETLY_PORT:-8083}
KEY_FILE=$FACEGATE_DATA/demo-secretly.key
SECRETLY_ID=$($F client list | awk '$2 == "demo-secretly" { print $1; exit }')
if [ -z "$SECRETLY_ID" ] || [ ! -s "$KEY_FILE" ] || [[ "$($F faces aws-key list --client "$SECRETLY_ID")" != *"$(head -n 1 "$KEY_FILE")"* ]]; then
  remove_clients demo-secretly
  SECRETLY_ID=$($F client add --name demo-secretly --grant-types client_credentials --scope "faces:read faces:write" | awk '/^client_id:/ { print $2 }')
  (umask 077; $F faces aws-key add --client "$SECRETLY_ID" 2>/dev/null | awk '{ print $2 }' >"$KEY_FILE")
fi

pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "stopping..."
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

$F serve & pids+=($!)
for _ in $(seq 100); do
  curl -fsS -o /dev/null "http://localhost:$PORT/.well-known/openid-configuration" 2>/dev/null && break
  sleep 0.2
done

NOTES_ISSUER=$FACEGATE_ISSUER NOTES_CLIENT_ID=$NOTES_ID NOTES_CLIENT_SECRET_FILE=$SECRET_FILE \
  NOTES_LISTEN=127.0.0.1:$NOTES_PORT NOTES_PUBLIC_URL=$NOTES_URL NOTES_DATABASE=$FACEGATE_DATA/notes.db RUST_LOG=${RUST_LOG:-warn} \
  target/release/notes & pids+=($!)

SPA_LINE="  single-page app: (not started: needs Node.js and npm — apt-get install nodejs npm)"
if command -v node >/dev/null && command -v npm >/dev/null; then
  if [ ! -d examples/spa/node_modules/oidc-client-ts ]; then npm ci --prefix examples/spa --no-audit --no-fund --silent; fi
  SPA_ISSUER=$FACEGATE_ISSUER SPA_CLIENT_ID=$SPA_ID SPA_LISTEN=127.0.0.1:$SPA_PORT SPA_PUBLIC_URL=$SPA_URL \
    node examples/spa/serve.mjs >/dev/null & pids+=($!)
  SPA_LINE="  single-page app: $SPA_URL      (oidc-client-ts in the browser; shows the ID token's claims)"
fi
SECRETLY_LINE="  notes by face:   (not started: needs Node.js and npm)"
if command -v node >/dev/null && command -v npm >/dev/null; then
  if [ ! -d examples/secretly/node_modules/aws-sdk ]; then npm ci --prefix examples/secretly --no-audit --no-fund --silent; fi
  AWS_ACCESS_KEY_ID=$(sed -n 1p "$KEY_FILE") AWS_SECRET_ACCESS_KEY=$(sed -n 2p "$KEY_FILE") \
    SECRETLY_REKOGNITION_ENDPOINT=$FACEGATE_ISSUER/aws/rekognition SECRETLY_LISTEN=127.0.0.1:$SECRETLY_PORT \
    SECRETLY_DATA=$FACEGATE_DATA/secretly-notes.json node examples/secretly/server.mjs >/dev/null & pids+=($!)
  SECRETLY_LINE="  notes by face:   $SECRETLY_URL      (examples/secretly: aws-sdk's Rekognition calls, answered by facegate)"
fi
sleep 1

cat <<MSG

facegate is running on $FACEGATE_ISSUER (data in $FACEGATE_DATA)

Open:
  secret notes:    $NOTES_URL      (sign in with your face; write notes only you can read)
$SPA_LINE
$SECRETLY_LINE
  your faces:      $FACEGATE_ISSUER/account   enrol your face here first
                   (sign in as  demo / demo-password-2026, or create an account: $FACEGATE_ISSUER/signup)
  mail:            no SMTP server is set, so mails (confirmation, password reset) are written to
                   $FACEGATE_DATA/outbox/  — open the newest .eml file to follow its link
  admin:           $F admin users   (or set FACEGATE_ADMIN_TOKEN and open $FACEGATE_ISSUER/admin)

  face login runs a liveness check: follow the arrows (turn your head, move your nose into the circle
  or blink) until the check passes; a photo of your face will not do.
  discovery:       $FACEGATE_ISSUER/.well-known/openid-configuration
  your own app:    $F client add --name APP --redirect-uri URL   (see docs/examples.md)
Ctrl-C stops everything.

MSG
# Until Ctrl-C, or until one of them stops.
wait -n "${pids[@]}" || true
