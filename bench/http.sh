#!/usr/bin/env bash
# HTTP benchmarks of the provider: discovery, JWKS, code exchange and client_credentials at /token,
# and the memory of an idle server. Needs wrk (Debian package). Runs a release server on a free port
# with a throw-away data directory; loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
cargo build --release -q -p facegate-server --bin facegate --example mint_codes
F=target/release/facegate
DATA=$(mktemp -d)
PORT=${PORT:-18181}
export FACEGATE_DATA=$DATA FACEGATE_LISTEN=127.0.0.1:$PORT
DB="sqlite://$DATA/facegate.db?mode=rwc"
USER_ID=$(echo "correct horse battery staple" | $F user add --username bench --password-stdin)
CLIENT=$($F client add --name bench --redirect-uri http://localhost:9/cb --json)
CC=$($F client add --name bench-cc --grant-types client_credentials --json)
id() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
CID=$(id "$CLIENT" client_id); CSECRET=$(id "$CLIENT" client_secret)
CCID=$(id "$CC" client_id); CCSECRET=$(id "$CC" client_secret)
$F serve >"$DATA/serve.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$DATA"' EXIT
sleep 1.5
echo "idle RSS: $(awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/$PID/status)"
URL=http://127.0.0.1:$PORT
for path in /.well-known/openid-configuration /jwks.json; do
  echo "== GET $path"; wrk -t2 -c32 -d8s "$URL$path" | grep -E "Requests/sec|Latency|Non-2xx"
done
echo "== POST /token client_credentials"
cat > "$DATA/cc.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $(printf '%s:%s' "$CCID" "$CCSECRET" | base64 -w0)"
LUA
wrk -t2 -c16 -d8s -s "$DATA/cc.lua" "$URL/token" | grep -E "Requests/sec|Latency|Non-2xx"
N=${CODES:-40000}
target/release/examples/mint_codes "$DB" "$CID" "$USER_ID" http://localhost:9/cb "$N" > "$DATA/codes.txt"
echo "== POST /token authorization_code (each code once; RS256 ID token; $N codes minted)"
wrk -t2 -c16 -d8s -s bench/token.lua "$URL" -- "$DATA/codes.txt" 2 "$(printf '%s:%s' "$CID" "$CSECRET" | base64 -w0)" | grep -E "Requests/sec|Latency|Non-2xx|requests in"
echo "RSS after load: $(awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/$PID/status)"
