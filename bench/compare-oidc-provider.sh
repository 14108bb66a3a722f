#!/usr/bin/env bash
# facegate against panva's oidc-provider (latest 9.x from npm, Node, in-memory adapter, opaque
# tokens), in the same run, with the same wrk command line, client and body for each endpoint:
# discovery, JWKS, client_credentials and authorization_code at /token. Prints both and the ratio.
# Then checks that a token facegate issued survives `kill -9` the moment after the response.
#
# Needs wrk, node and npm. Installs oidc-provider into a scratch folder; loopback only.
# Environment: DURATION (wrk seconds, default 8), CONNS (default 16), CODES (default 60000).
set -euo pipefail
cd "$(dirname "$0")/.."
for c in wrk node npm curl python3; do
  command -v $c >/dev/null || { echo "$c is not installed" >&2; exit 1; }
done
DURATION=${DURATION:-8}
CONNS=${CONNS:-16}
N=${CODES:-60000}
WRK="wrk -t2 -c$CONNS -d${DURATION}s"
cargo build --release -q -p facegate-server --bin facegate --example mint_codes
F=$PWD/target/release/facegate
SCRATCH=$(mktemp -d)
DATA=$SCRATCH/facegate
FG_PORT=${FG_PORT:-18181}
OP_PORT=${OP_PORT:-18182}
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$SCRATCH"; }
trap cleanup EXIT

for port in $FG_PORT $OP_PORT; do
  if curl -s "http://127.0.0.1:$port/" >/dev/null; then echo "port $port is in use" >&2; exit 1; fi
done
echo "== installing oidc-provider@9 into a scratch folder"
(cd "$SCRATCH" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund oidc-provider@9 >/dev/null)
OP_VERSION=$(node -e "console.log(require('$SCRATCH/node_modules/oidc-provider/package.json').version)")
cp bench/oidc-provider-peer.mjs "$SCRATCH/peer.mjs"

# facegate: the same clients (client_secret_basic) as the peer.
mkdir -p "$DATA"
export FACEGATE_DATA=$DATA FACEGATE_LISTEN=127.0.0.1:$FG_PORT FACEGATE_FACE=off
DB="sqlite://$DATA/facegate.db?mode=rwc"
USER_ID=$(echo "correct horse battery staple" | $F user add --username bench --password-stdin)
CLIENT=$($F client add --name bench --redirect-uri http://localhost:9/cb --scope openid --json)
CC=$($F client add --name bench-cc --grant-types client_credentials --scope openid --json)
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
FG_RP="$(field "$CLIENT" client_id):$(field "$CLIENT" client_secret)"
FG_CC="$(field "$CC" client_id):$(field "$CC" client_secret)"
target/release/examples/mint_codes "$DB" "$(field "$CLIENT" client_id)" "$USER_ID" http://localhost:9/cb "$N" > "$SCRATCH/fg-codes.txt"
OP_RP="bench-rp:bench-rp-secret-0123456789abcdef0123456789"
OP_CC="bench-cc:bench-cc-secret-0123456789abcdef0123456789"

start_facegate() {
  $F serve >>"$SCRATCH/facegate.log" 2>&1 &
  FG_PID=$!
  PIDS+=("$FG_PID")
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$FG_PORT/.well-known/openid-configuration" >/dev/null && return; sleep 0.1; done
  echo "facegate did not start" >&2; cat "$SCRATCH/facegate.log" >&2; exit 1
}
start_facegate
node "$SCRATCH/peer.mjs" "$OP_PORT" "$SCRATCH/op-codes.txt" "$N" >"$SCRATCH/op.log" 2>&1 &
PIDS+=("$!")
# (It mints its codes before listening.)
for _ in $(seq 3000); do curl -sf "http://127.0.0.1:$OP_PORT/.well-known/openid-configuration" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$OP_PORT/.well-known/openid-configuration" >/dev/null || { echo "oidc-provider did not start" >&2; cat "$SCRATCH/op.log" >&2; exit 1; }

cc_lua() { # $1 = id:secret
  cat <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $(printf '%s' "$1" | base64 -w0)"
LUA
}
cc_lua "$FG_CC" > "$SCRATCH/fg-cc.lua"
cc_lua "$OP_CC" > "$SCRATCH/op-cc.lua"

rps() { grep -E "Requests/sec" | awk '{print $2}'; }
check() { # fail loudly if any non-2xx answers (a benchmark of errors is no benchmark)
  if grep -q "Non-2xx" "$1"; then echo "non-2xx responses in $(basename "$1"):" >&2; cat "$1" >&2; exit 1; fi
}
row() { # name fg_out op_out
  check "$2"; check "$3"
  local a b; a=$(rps < "$2"); b=$(rps < "$3")
  printf "%-34s %12s %16s %8s\n" "$1" "$a" "$b" "$(python3 -c "print(f'{$a/$b:.2f}x')")"
}
FG=http://127.0.0.1:$FG_PORT
OP=http://127.0.0.1:$OP_PORT
# Check each setup once with the last code of each file (the load runs never get that far).
probe() { # url id:secret codes_file
  local out; out=$(curl -s -u "$2" --data-urlencode "code=$(tail -1 "$3")" \
    -d "grant_type=authorization_code&redirect_uri=http%3A%2F%2Flocalhost%3A9%2Fcb" "$1/token")
  case "$out" in *id_token*) ;; *) echo "code exchange at $1 does not work: $out" >&2; exit 1;; esac
}
probe "$FG" "$FG_RP" "$SCRATCH/fg-codes.txt"
probe "$OP" "$OP_RP" "$SCRATCH/op-codes.txt"
echo "== $WRK, same command line for both; oidc-provider $OP_VERSION, node $(node --version)"
$WRK "$FG/.well-known/openid-configuration" > "$SCRATCH/1a"
$WRK "$OP/.well-known/openid-configuration" > "$SCRATCH/1b"
$WRK "$FG/jwks.json" > "$SCRATCH/2a"
$WRK "$OP/jwks" > "$SCRATCH/2b"
$WRK -s "$SCRATCH/fg-cc.lua" "$FG/token" > "$SCRATCH/3a"
$WRK -s "$SCRATCH/op-cc.lua" "$OP/token" > "$SCRATCH/3b"
$WRK -s bench/token.lua "$FG" -- "$SCRATCH/fg-codes.txt" 2 "$(printf '%s' "$FG_RP" | base64 -w0)" > "$SCRATCH/4a"
$WRK -s bench/token.lua "$OP" -- "$SCRATCH/op-codes.txt" 2 "$(printf '%s' "$OP_RP" | base64 -w0)" > "$SCRATCH/4b"
for f in 4a 4b; do
  if grep -q "exhausted" "$SCRATCH/$f" || [ "$(grep -oE '^ +[0-9]+ requests' "$SCRATCH/$f" | awk '{print $1}')" -gt "$N" ]; then
    echo "ran out of codes ($f): raise CODES" >&2; exit 1
  fi
done
printf "%-34s %12s %16s %8s\n" "endpoint (requests/s)" "facegate" "oidc-provider" "ratio"
row "GET discovery" "$SCRATCH/1a" "$SCRATCH/1b"
row "GET JWKS" "$SCRATCH/2a" "$SCRATCH/2b"
row "POST /token client_credentials" "$SCRATCH/3a" "$SCRATCH/3b"
row "POST /token authorization_code" "$SCRATCH/4a" "$SCRATCH/4b"

echo "== durability: a token issued right before kill -9 is still active after a restart"
TOKEN=$(curl -sf -u "$FG_CC" -d grant_type=client_credentials "$FG/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
kill -9 "$FG_PID"; wait "$FG_PID" 2>/dev/null || true
start_facegate
ACTIVE=$(curl -sf -u "$FG_CC" --data-urlencode "token=$TOKEN" "$FG/introspect" | python3 -c 'import json,sys; print(json.load(sys.stdin)["active"])')
echo "introspection after kill -9 and restart: active=$ACTIVE"
[ "$ACTIVE" = "True" ] || { echo "the token did not survive" >&2; exit 1; }
