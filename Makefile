# The two commands a new user needs: `make run` and `make test`. Everything else is optional.
SHELL := /bin/bash
.DEFAULT_GOAL := help

LOCAL      ?= $(CURDIR)/.local
PG_PORT    ?= 55432
REDIS_PORT ?= 56379
RELEASE_BIN = .build/release/event-handler
PROFILE     ?=
BENCH_SCALE ?= 0.05
BENCH_TOOL  ?= k6
DEBUG_BIN   = .build/debug/event-handler
FUZZ_SECONDS ?= 300
FUZZ_TARGETS ?=

.PHONY: help deps build build-release run demo test test-faults check-monitoring check-deploy check-docs secrets bench bench-core bench-drain fuzz fuzz-smoke protos migrations-bundle migrate pg-start pg-stop redis-start redis-stop clean

help:
	@echo "make run         build (release) and run the service against a local PostgreSQL, Redis and dev-kafka"
	@echo "make demo        (with make run running) send a few events over gRPC and Kafka, show the rows"
	@echo "make test        the whole test suite (starts its own PostgreSQL servers)"
	@echo "make test-faults the fault-injection suite alone, with its figures (bench/results/faults-*.jsonl)"
	@echo "make check-monitoring  promtool checks and unit tests of the alert rules, dashboard checks"
	@echo "make secrets           random passwords for docker compose in ./secrets/ (kept if present)"
	@echo "make check-deploy      docker-compose.yml against the Compose Specification, .env.example, Dockerfile"
	@echo "make check-docs        every variable the service reads in .env.example and docs/configuration.md"
	@echo "                       (same defaults), every metric in docs/operations.md; then the check's self-test"
	@echo "make bench       the tuning guide's load profiles, naive peer and ceiling alongside, then PERFORMANCE.md"
	@echo "                 (PROFILE=smoke|baseline|scale|target|endurance|stress|spike|soak for one; BENCH_SCALE=0.05)"
	@echo "make bench-core  buffer and flush throughput against the raw PostgreSQL ceiling"
	@echo "make bench-drain the service draining 1,000,000 Kafka events, against the same ceiling"
	@echo "                 (the benchmarks are a package of their own: Benchmarks/, built by scripts/build-release.sh)"
	@echo "make fuzz        libFuzzer on every parser of outside input, each target FUZZ_SECONDS (300) s;"
	@echo "                 FUZZ_TARGETS=\"catalog grpc\" for some; executions and corpus sizes to bench/results/fuzz-*.txt"
	@echo "make fuzz-smoke  the same, 20 s per target (what CI runs)"
	@echo "make migrate     apply the migrations to the database in .env"
	@echo "make migrations-bundle  rebuild the built-in migrations from migrations/*.sql (after changing one)"
	@echo "make protos      regenerate Sources/GameEvents and Sources/GameEventsGRPC from protos/"

deps:
	@scripts/install-deps.sh

build: deps
	swift build

build-release: deps
	scripts/build-release.sh event-handler dev-kafka

# Local PostgreSQL in .local/postgres on $(PG_PORT), tuned with postgresql-tuning.conf scaled
# to this machine. Stays up between runs; `make pg-stop` stops it.
pg-start: deps
	@PG_EXTRA_OPTS="-c shared_buffers=512MB -c effective_cache_size=2GB" \
	  scripts/postgres.sh start $(LOCAL)/postgres $(PG_PORT)

pg-stop:
	@scripts/postgres.sh stop $(LOCAL)/postgres $(PG_PORT) || true

redis-start: deps
	@scripts/redis.sh start $(LOCAL)/redis $(REDIS_PORT)

redis-stop:
	@scripts/redis.sh stop $(LOCAL)/redis $(REDIS_PORT) || true

run: build-release pg-start redis-start
	@scripts/run-local.sh $(RELEASE_BIN) $(PG_PORT) $(REDIS_PORT) $(LOCAL)

demo: deps
	@scripts/build-release.sh event-demo > /dev/null
	@scripts/demo.sh .build/release/event-demo $(PG_PORT)

migrate: build-release
	$(RELEASE_BIN) migrate

# The product's tests, then the benchmarks package's (Benchmarks/: the load generator, the run
# analysis, the naive peer against a real PostgreSQL), built into the same .build/.
test: check-monitoring check-deploy check-docs
	scripts/check-source-sizes.sh
	swift build --build-tests
	swift test --skip-build --no-parallel
	scripts/swift-benchmarks.sh build --build-tests
	scripts/swift-benchmarks.sh test --skip-build --no-parallel

# The fault-injection suite alone (it also runs in `make test`): PostgreSQL, Redis and the
# broker taken away under load, SIGKILL and SIGTERM; each scenario ends with an exact table.
# Writes what each measured to bench/results/faults-<time>.jsonl and prints the table of docs/reliability.md.
test-faults: deps
	@scripts/install-deps.sh --test
	swift build --build-tests
	@report=bench/results/faults-$$(date -u +%Y-%m-%dT%H%M%SZ).jsonl; \
	FAULT_REPORT=$$PWD/$$report FAULT_OUTAGE_SECONDS=$${FAULT_OUTAGE_SECONDS:-300} swift test --skip-build --no-parallel --filter FaultInjectionTests && \
	python3 scripts/fault-table.py $$report

# Alert rules (promtool check + unit tests), Prometheus config, Grafana dashboard, metric names.
check-monitoring:
	@scripts/install-deps.sh --test
	scripts/check-monitoring.sh

# The passwords docker compose mounts as secrets (./secrets/, not in git), if missing.
secrets:
	scripts/make-secrets.sh

# Deployment files, checked without a Docker engine.
check-deploy:
	@scripts/install-deps.sh --test
	scripts/check-deploy.sh
	scripts/check-deploy.sh --self-test

# The documentation against the code (python3 only): every variable the service reads in
# .env.example and docs/configuration.md with the same default, every metric of
# deploy/prometheus/metrics.txt in docs/operations.md. The self-test breaks each of those in a
# copy and expects the check to fail.
check-docs:
	scripts/check-docs.sh
	scripts/check-docs.sh --self-test

bench: deps
	PROFILE=$(PROFILE) BENCH_SCALE=$(BENCH_SCALE) BENCH_TOOL=$(BENCH_TOOL) scripts/bench.sh

bench-core: deps
	scripts/build-release.sh bench-core > /dev/null
	.build/release/bench-core

bench-drain: deps
	scripts/build-release.sh event-handler bench-drain > /dev/null
	.build/release/bench-drain $(ARGS)

# libFuzzer (with AddressSanitizer) on every parser of outside input: the fuzz package, Fuzz/,
# built into .build-fuzz/; each target's corpus grows in .build-fuzz/corpus/ (not in git) from
# its seeds in Fuzz/corpus/. See docs/development.md, "Fuzzing".
fuzz: deps
	scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# What CI runs (.ci/run): every target for 20 s, seeds (and the inputs of crashes fixed) first,
# with a fixed random seed, so each run tries the same mutations (make fuzz explores).
fuzz-smoke: deps
	FUZZ_SEED=1 scripts/fuzz.sh 20 $(FUZZ_TARGETS)

protos:
	scripts/generate-protos.sh

migrations-bundle:
	scripts/bundle-migrations.py

clean: pg-stop
	rm -rf .build .build-fuzz $(LOCAL)
