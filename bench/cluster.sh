#!/usr/bin/env bash
# Scale-out numbers (issue 14): requests/s of POST /token (client_credentials) and POST /v1/compare
# with one instance on SQLite, one on PostgreSQL, and two on PostgreSQL behind nginx running
# deploy/nginx-facegate.conf, with the same wrk command line for each. Everything runs on this
# machine: PostgreSQL, nginx, the instances and wrk share its cores, so a second instance adds no
# CPU — the two-instance rows show what the shared state costs, not what a second machine adds.
#
# Needs wrk, nginx, PostgreSQL's server programs (/usr/lib/postgresql/*/bin) and the default model
# pack (for /v1/compare). Loopback only; everything in a scratch folder. DURATION (default 8), CONNS
# (default 16; FACE_CONNS for /v1/compare, default 4), IMAGE_A, IMAGE_B override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
for c in wrk nginx curl python3; do command -v $c >/dev/null || [ -x /usr/sbin/$c ] || { echo "$c is not installed" >&2; exit 1; }; done
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || { echo "PostgreSQL's server programs are not installed" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
TESTDATA=${FACEGATE_TESTDATA:-../shared/testdata}
A=${IMAGE_A:-$TESTDATA/faces/deepface/person_img16/img62.jpg}
B=${IMAGE_B:-$TESTDATA/faces/deepface/person_img16/img16.jpg}
DURATION=${DURATION:-8}
CONNS=${CONNS:-16}
WRK="wrk -t2 -c$CONNS -d${DURATION}s"
# /v1/compare: a few callers (the face queue holds 8 per worker; beyond it callers get 503 at once).
WRK_FACE="wrk -t2 -c${FACE_CONNS:-4} -d${DURATION}s"
cargo build --release -q -p facegate-server --bin facegate
F=$PWD/target/release/facegate
S=$(mktemp -d)
chmod 755 "$S"
cleanup() {
  [ -f "$S/pids" ] && while read -r p; do kill "$p" 2>/dev/null || true; done < "$S/pids"
  [ -f "$S/pg/postmaster.pid" ] && run_pg "$PGBIN/pg_ctl" -D "$S/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$S"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# PostgreSQL in the scratch folder (as nobody when run as root: initdb refuses root).
run_pg() { if [ "$(id -u)" = 0 ]; then su -s /bin/sh nobody -c "$(printf '%q ' "$@")"; else "$@"; fi; }
mkdir -p "$S/pg" "$S/sock"
[ "$(id -u)" = 0 ] && chown nobody "$S/pg" "$S/sock"
PGPORT=$(free_port)
run_pg "$PGBIN/initdb" -D "$S/pg" -U postgres -A trust >/dev/null
run_pg "$PGBIN/pg_ctl" -D "$S/pg" -l "$S/sock/pg.log" -w -o "-h 127.0.0.1 -p $PGPORT -k $S/sock -c fsync=on" start >/dev/null
PG="postgres://postgres@127.0.0.1:$PGPORT/postgres"

body() {
  python3 - "$A" "$B" > "$S/compare.json" <<'PY'
import base64, json, sys
print(json.dumps({"sourceImage": base64.b64encode(open(sys.argv[1], "rb").read()).decode(),
                  "targetImage": base64.b64encode(open(sys.argv[2], "rb").read()).decode()}))
PY
}
body
export FACEGATE_API_RATE=1000000 FACEGATE_API_BURST=1000000 FACEGATE_API_MONTHLY_QUOTA=0 FACEGATE_LOG=warn
# Every instance (and the CLI) shares one data key, as a cluster's operator configures it.
export FACEGATE_DATA_KEY="${FACEGATE_DATA_KEY:-$(python3 -c 'import secrets; print(secrets.token_hex(32))')}"

start_instance() { # $1 = database URL, $2 = data dir; prints the port
  local port; port=$(free_port)
  mkdir -p "$2"
  FACEGATE_DATABASE_URL="$1" FACEGATE_DATA="$2" FACEGATE_LISTEN=127.0.0.1:$port FACEGATE_LIVENESS=off \
    "$F" serve >>"$2/serve.log" 2>&1 &
  echo "$!" >> "$S/pids"
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { echo "instance did not start" >&2; cat "$2/serve.log" >&2; exit 1; }
  echo "$port"
}

start_nginx() { # ports... ; prints the proxy port
  local port; port=$(free_port)
  local d="$S/nginx"; mkdir -p "$d"
  python3 - "$port" "$@" > "$d/facegate.conf" <<'PY'
import sys
port, backends = sys.argv[1], sys.argv[2:]
out = []
for line in open("deploy/nginx-facegate.conf"):
    t = line.strip()
    if t.startswith("server 10.0.0."):
        if backends:
            out.append(f"    server 127.0.0.1:{backends.pop(0)} max_fails=1 fail_timeout=5s;\n")
    elif t.startswith("listen "):
        out.append(f"    listen 127.0.0.1:{port};\n")
    else:
        out.append(line)
print("".join(out))
PY
  cat > "$d/nginx.conf" <<EOF
daemon off; master_process off; pid $d/nginx.pid; error_log $d/error.log warn;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $d/body; proxy_temp_path $d/proxy;
  fastcgi_temp_path $d/f; uwsgi_temp_path $d/u; scgi_temp_path $d/s; include $d/facegate.conf; }
EOF
  "$NGINX" -p "$d" -c "$d/nginx.conf" >/dev/null 2>&1 &
  echo "$!" >> "$S/pids"
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  echo "$port"
}

field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
measure() { # $1 = label, $2 = database URL, $3 = base URL
  local cc id secret token
  cc=$(FACEGATE_DATABASE_URL="$2" FACEGATE_DATA="$S/cli" "$F" client add --name "bench-$RANDOM" \
       --grant-types client_credentials --scope "openid faces:read" --json)
  id=$(field "$cc" client_id); secret=$(field "$cc" client_secret)
  sleep 1.2 # the client cache of a running instance (1 s)
  cat > "$S/cc.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $(printf '%s:%s' "$id" "$secret" | base64 -w0)"
LUA
  token=$(curl -sf -u "$id:$secret" -d grant_type=client_credentials -d scope=faces:read "$3/token" \
          | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  cat > "$S/compare.lua" <<LUA
wrk.method = "POST"
local f = io.open("$S/compare.json", "rb"); wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
LUA
  local t
  t=$($WRK -s "$S/cc.lua" "$3/token" | tee "$S/t.out" | awk '/Requests\/sec/ {print $2}')
  grep -q "Non-2xx" "$S/t.out" && { echo "non-2xx answers at /token ($1):" >&2; cat "$S/t.out" >&2; exit 1; }
  $WRK_FACE -s "$S/compare.lua" "$3/v1/compare" > "$S/c.out"
  # Served = answered minus the 503s of a full face queue (wrk counts both).
  python3 - "$S/c.out" "$DURATION" "$1" "$t" <<'PY'
import re, sys
out = open(sys.argv[1]).read()
total = int(re.search(r"(\d+) requests in", out).group(1))
m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
shed = int(m.group(1)) if m else 0
secs = float(sys.argv[2])
print(f"| {sys.argv[3]} | {sys.argv[4]} | {(total - shed) / secs:.1f} served/s ({shed / secs:.0f}/s answered 503 busy) |")
PY
}

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); /token: $WRK; /v1/compare: $WRK_FACE"
echo
echo "| setup | POST /token client_credentials (req/s) | POST /v1/compare (req/s) |"
echo "|---|---|---|"
P1=$(start_instance "sqlite://$S/sqlite/facegate.db?mode=rwc" "$S/sqlite")
measure "1 instance, SQLite" "sqlite://$S/sqlite/facegate.db?mode=rwc" "http://127.0.0.1:$P1"
kill "$(tail -1 "$S/pids")" 2>/dev/null || true; sleep 0.5
P2=$(start_instance "$PG" "$S/pg1")
measure "1 instance, PostgreSQL" "$PG" "http://127.0.0.1:$P2"
P3=$(start_instance "$PG" "$S/pg2")
N=$(start_nginx "$P2" "$P3")
measure "2 instances, PostgreSQL, nginx" "$PG" "http://127.0.0.1:$N"
