#!/usr/bin/env bash
# `make fuzz`: every cargo-fuzz target (fuzz/fuzz_targets) for FUZZ_SECONDS each (default 600),
# starting from the seed corpus in fuzz/corpus/TARGET; what the fuzzer adds goes to
# target/fuzz-corpus/TARGET (not the repository). A crash leaves its input in
# fuzz/artifacts/TARGET: copy it to fuzz/regressions/TARGET, fix the code, and the regression test
# (crates/facegate-server/tests/fuzz_regressions.rs) replays it in `make test` from then on.
# Prints one line per target: executions, seconds, executions per second, crashes.
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${FUZZ_SECONDS:-600}"
TARGETS="${FUZZ_TARGETS:-image_decode api_input authorize_request token_request client_assertion liveness_frames config_file}"
export RUSTC_BOOTSTRAP=1
# The bundled SQLite amalgamation defines two file-static arrays named aiOff; AddressSanitizer's
# one-definition-rule check takes them for one global and aborts at start (api_input).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p target/fuzz
summary=target/fuzz/summary.md
echo "| target | executions | seconds | exec/s | crashes |" > "$summary"
echo "|---|---|---|---|---|" >> "$summary"
failed=0
for t in $TARGETS; do
    mkdir -p "target/fuzz-corpus/$t"
    log="target/fuzz/$t.log"
    (cd fuzz && cargo fuzz run -O "$t" "../target/fuzz-corpus/$t" "corpus/$t" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=4096 -timeout=20 -print_final_stats=1) > "$log" 2>&1
    rc=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    secs=$(grep -o 'stat::total_time_in_seconds: *[0-9]*' "$log" 2>/dev/null | grep -o '[0-9]*$' | tail -1)
    if [ -z "$secs" ]; then secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o '[0-9]* second' | grep -o '[0-9]*' | tail -1); fi
    crashes=$(ls "fuzz/artifacts/$t" 2>/dev/null | wc -l)
    rate=$(awk -v r="${runs:-0}" -v s="${secs:-0}" 'BEGIN { if (s > 0) printf "%.0f", r / s; else print "-" }')
    echo "| $t | ${runs:-?} | ${secs:-?} | $rate | $crashes |" | tee -a "$summary"
    if [ "$rc" -ne 0 ]; then failed=1; echo "  $t stopped (exit $rc): see $log"; fi
done
echo "summary: $summary"
exit $failed
