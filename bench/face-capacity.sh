#!/usr/bin/env bash
# Face capacity: the throughput/concurrency curve of /v1/compare (1, 2, 8, 32, 128 callers): served
# per second, p50/p99 of served requests, shed share (503 + Retry-After) and the slowest shed answer.
# Runs a release server on a free port with a throw-away data directory and the installed default
# pack. FACEGATE_FACE_WORKERS / FACEGATE_FACE_QUEUE pass through (defaults: one worker per core, a
# bound of 8 per worker). LEVELS, SECONDS_PER_LEVEL, IMAGE_A, IMAGE_B override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
TESTDATA=${FACEGATE_TESTDATA:-../shared/testdata}
A=${IMAGE_A:-$TESTDATA/faces/deepface/person_img16/img62.jpg}
B=${IMAGE_B:-$TESTDATA/faces/deepface/person_img16/img16.jpg}
F=${FACEGATE_BIN:-target/release/facegate}
[ -x "$F" ] || cargo build --release -q -p facegate-server --bin facegate
DATA=$(mktemp -d)
PORT=${PORT:-18282}
export FACEGATE_DATA=$DATA FACEGATE_LISTEN=127.0.0.1:$PORT FACEGATE_API_RATE=100000 FACEGATE_API_BURST=100000 FACEGATE_API_MONTHLY_QUOTA=0
CC=$($F client add --name bench-cc --grant-types client_credentials --scope "faces:read" --json)
id() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
CCID=$(id "$CC" client_id); CCSECRET=$(id "$CC" client_secret)
$F serve >"$DATA/serve.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$DATA"' EXIT
URL=http://127.0.0.1:$PORT
for _ in $(seq 100); do curl -sf "$URL/.well-known/openid-configuration" >/dev/null && break; sleep 0.2; done
TOKEN=$(curl -sf -u "$CCID:$CCSECRET" -d grant_type=client_credentials -d scope=faces:read "$URL/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
python3 - "$A" "$B" > "$DATA/body.json" <<'PY'
import base64, json, sys
print(json.dumps({"sourceImage": base64.b64encode(open(sys.argv[1], "rb").read()).decode(),
                  "targetImage": base64.b64encode(open(sys.argv[2], "rb").read()).decode()}))
PY
curl -sf -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' --data-binary @"$DATA/body.json" "$URL/v1/compare" >/dev/null \
  || { echo "the face API does not answer (models installed? see $DATA/serve.log)" >&2; cat "$DATA/serve.log" >&2; exit 1; }
echo "workers=${FACEGATE_FACE_WORKERS:-cores} queue=${FACEGATE_FACE_QUEUE:-8 per worker}; idle RSS $(awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/$PID/status)"
python3 bench/load.py "$URL/v1/compare" "$TOKEN" "$DATA/body.json" --levels "${LEVELS:-1,2,8,32,128}" --seconds "${SECONDS_PER_LEVEL:-10}"
echo "RSS after load: $(awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/$PID/status) (peak $(awk '/VmHWM/ {print $2/1024 " MiB"}' /proc/$PID/status))"
