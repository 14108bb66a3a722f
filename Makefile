# The README's commands. `make test` is what CI runs (through .ci/run).
SHELL := /bin/bash
CARGO ?= cargo
FACEGATE = target/release/facegate
TESTDATA ?= ../shared/testdata

.PHONY: all build models node-deps aws-deps spa-deps e2e readme-screenshots test lint unit bench bench-http eval eval-all liveness-eval demo demo-faces clean

all: build

# facegate and the notes example (examples/notes), release builds.
build:
	$(CARGO) build --release -p facegate-server -p facegate-example-notes -p facegate-example-device-cli

# Fetch the default model pack and the ONNX Runtime library, and the `open` pack its accuracy guard
# tests (no-op when installed and intact).
models: build
	$(FACEGATE) models fetch
	$(FACEGATE) models fetch --pack open

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The Node test dependencies (openid-client, for crates/facegate-server/tests/node_rp.rs), installed
# from tests/node/package-lock.json when missing or stale. Without npm that test skips, unless
# FACEGATE_REQUIRE_NODE=1 (CI), which makes it fail.
node-deps:
	@if [ ! -d tests/node/node_modules/openid-client ] || [ tests/node/package-lock.json -nt tests/node/node_modules/.package-lock.json ]; then \
		if command -v npm >/dev/null; then npm ci --prefix tests/node; \
		else echo "npm not found: not installing tests/node (npm ci --prefix tests/node)"; fi; \
	fi

# The AWS SDKs of crates/facegate-server/tests/rekognition.rs (tests/aws: JavaScript v3 and v2 from
# npm, boto3 from PyPI) and examples/secretly's aws-sdk, when missing. Without them that test skips,
# unless FACEGATE_REQUIRE_NODE=1 (CI).
aws-deps:
	@if command -v npm >/dev/null; then \
		[ -d tests/aws/node_modules/@aws-sdk/client-rekognition ] || npm ci --prefix tests/aws --no-audit --no-fund; \
		[ -d examples/secretly/node_modules/aws-sdk ] || npm ci --prefix examples/secretly --no-audit --no-fund; \
	else echo "npm not found: not installing tests/aws and examples/secretly"; fi
	@python3 -c "import boto3" 2>/dev/null || python3 -m pip install -q -r tests/aws/requirements.txt || echo "boto3 not installed (pip install -r tests/aws/requirements.txt)"

# The single-page example's pinned oidc-client-ts (examples/spa/package-lock.json), when missing or stale.
spa-deps:
	@if [ ! -d examples/spa/node_modules/oidc-client-ts ] || [ examples/spa/package-lock.json -nt examples/spa/node_modules/.package-lock.json ]; then \
		if command -v npm >/dev/null; then npm ci --prefix examples/spa --no-audit --no-fund; \
		else echo "npm not found: not installing examples/spa (npm ci --prefix examples/spa)"; fi; \
	fi

# Browser end-to-end tests (tests/e2e, run by tests/e2e/run.mjs): face login through the notes example
# and the single-page example, in headless Debian Chromium driven by playwright-core, with fake webcams
# made from test photos by ffmpeg; screenshots in target/e2e; one line "e2e: N passed, N failed".
# Skipped with a message when chromium, ffmpeg or Node packages are missing, unless
# FACEGATE_REQUIRE_BROWSER=1 (CI), which makes that a failure.
e2e: models spa-deps
	@if [ ! -d tests/e2e/node_modules/playwright-core ] && command -v npm >/dev/null; then npm ci --prefix tests/e2e --no-audit --no-fund; fi
	@if command -v chromium >/dev/null && command -v ffmpeg >/dev/null && [ -d tests/e2e/node_modules/playwright-core ] && [ -d examples/spa/node_modules/oidc-client-ts ]; then \
		node tests/e2e/run.mjs; \
	elif [ "$$FACEGATE_REQUIRE_BROWSER" = 1 ]; then \
		echo "e2e: chromium, ffmpeg, tests/e2e/node_modules or examples/spa/node_modules missing and FACEGATE_REQUIRE_BROWSER=1"; exit 1; \
	else echo "SKIPPED: browser e2e tests (needs: apt-get install chromium ffmpeg nodejs npm)"; fi

# The README's screenshots (docs/img): taken by the e2e test, with no test person's face in them.
readme-screenshots: e2e
	cp target/e2e/readme-login.png docs/img/login.png
	cp target/e2e/readme-notes.png docs/img/notes.png

# Every test. Tests that need models, Node or the browser fail (not skip) in CI when those are missing.
test: models lint node-deps aws-deps e2e
	set -o pipefail; FACEGATE_REQUIRE_MODELS=1 $(CARGO) test --workspace 2>&1 | tee target/test.log
	@awk '/^test result:/ { p += $$4; f += $$6; i += $$8 } END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, i }' target/test.log

bench: models
	$(CARGO) bench -p facegate-vision --bench pipeline
	$(FACEGATE) bench --images $(TESTDATA)/liveness/silent_face/image_T1.jpg --repeat 30
	$(FACEGATE) bench --images $(TESTDATA)/faces/deepface --fit 640 --threads 2 --limit 61 --repeat 3

eval: models
	$(FACEGATE) eval --pairs $(TESTDATA)/faces/pairs.csv --root $(TESTDATA)/faces --exhaustive

# APCER/BPCER of the liveness check on ../shared/testdata (needs ffmpeg); docs/liveness.md has the results.
liveness-eval: models
	$(FACEGATE) liveness-eval --testdata $(TESTDATA)

eval-all: build
	$(FACEGATE) models fetch --pack all
	$(FACEGATE) eval --pairs $(TESTDATA)/faces/pairs.csv --root $(TESTDATA)/faces --exhaustive --pack insightface-s
	$(FACEGATE) eval --pairs $(TESTDATA)/faces/pairs.csv --root $(TESTDATA)/faces --exhaustive --pack open

# facegate, a demo account and the two example relying parties; prints the URLs (scripts/demo.sh).
demo:
	CARGO="$(CARGO)" bash scripts/demo.sh

# The face pipeline on sample photos.
demo-faces: models
	$(FACEGATE) analyze $(TESTDATA)/liveness/silent_face/image_T1.jpg $(TESTDATA)/faces/deepface/person_img1/img1.jpg $(TESTDATA)/faces/deepface/person_img3/img54.jpg
	$(FACEGATE) eval --pairs $(TESTDATA)/faces/pairs_small.csv --root $(TESTDATA)/faces

bench-http:
	bash bench/http.sh

clean:
	$(CARGO) clean

# The face API's search index (synthetic 512-d embeddings at 10k/100k/1M: latency p50/p99, memory, IVF
# recall), then index-faces throughput through the real pipeline and store: `facegate faces import` of
# the deepface photos into a scratch database.
.PHONY: bench-index
bench-index: models
	$(CARGO) bench -p facegate-index --bench search
	rm -rf target/bench-index
	FACEGATE_DATA=target/bench-index $(FACEGATE) faces import $(TESTDATA)/faces/deepface --collection bench
	FACEGATE_DATA=target/bench-index $(FACEGATE) faces import $(TESTDATA)/faces/dlib_johns --collection bench

# cargo-fuzz targets (fuzz/): each for FUZZ_SECONDS (default 600) from the seed corpus; not in CI.
# A crash's input goes to fuzz/regressions/TARGET, replayed by `make test` (tests/fuzz_regressions.rs).
.PHONY: fuzz soak
FUZZ_SECONDS ?= 600
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh

# Mixed load on loopback for SOAK_MINUTES (default 30), then the report (target/soak.md); not in CI.
SOAK_MINUTES ?= 30
soak: build
	$(CARGO) run --release -p facegate-server --example soak -- --bin $(FACEGATE) --minutes $(SOAK_MINUTES) --testdata $(TESTDATA) --out target/soak.md
