# cloudtrail-delta: the two commands are `make demo` and `make test`.
#
# Python tools (the test readers, moto_server, cargo-lambda, aws-sam-cli, cfn-lint) come from
# PyPI into $(VENV), created on first use from tests/requirements.txt.

VENV   := .venv
PYTHON := $(VENV)/bin/python
CARGO  ?= cargo
# cargo-lambda finds Zig (for cross-compiling to arm64) as `python3 -m ziglang` in the venv.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0

LAMBDA_ZIP := target/lambda/cloudtrail-delta-lambda/bootstrap.zip

.PHONY: demo test lint build deploy invoke-local bench bench-modes bench-memory bench-file-memory bench-scale bench-commit-rate soak clean tools

## demo: build, ingest the bundled sample logs into ./delta/, verify their signed digests, and
## print what landed.
demo:
	$(CARGO) build --release --bin cloudtrail-delta
	./target/release/cloudtrail-delta ingest samples
	@echo
	./target/release/cloudtrail-delta verify --from 2024-04-30 --to 2024-04-30 \
	  --public-keys samples/public-keys.json
	@echo
	@echo "Parquet files by table and partition:"
	@find delta -name '*.parquet' | sed -E 's|/part-[^/]+$$||' | sort | uniq -c

## test: every check a reviewer runs (rustfmt, clippy with warnings as errors) and every test:
## Rust unit and integration tests, the template checks, then the Python
## tests (the independent reader, and the end-to-end tests of the real Lambda binary under the
## Lambda Runtime API emulator against moto_server's S3 and DynamoDB on 127.0.0.1).
test: $(VENV)/.installed lint
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test --all-targets
	$(CARGO) build --bins  # target/debug/cloudtrail-delta{,-lambda,-maintenance}, which the Python tests run
	$(PYTHON) -m pytest -q tests/python

## lint: validate template.yaml with cfn-lint and `sam validate --lint` (offline), and hold
## checkov's findings to tests/lint/checkov-baseline.txt (each accepted one with its reason).
lint: $(VENV)/.installed $(VENV)/checkov/.installed
	$(VENV)/bin/cfn-lint template.yaml
	$(VENV)/bin/sam validate --lint --region us-east-1
	$(VENV)/checkov/bin/python tests/lint/checkov_gate.py $(VENV)/checkov/bin/checkov template.yaml tests/lint/checkov-baseline.txt

## build: the deployment package, target/lambda/cloudtrail-delta-lambda/bootstrap.zip
## (release, arm64, cross-compiled with cargo-lambda and Zig).
build: $(VENV)/.installed
	$(VENV)/bin/cargo-lambda lambda build --release --arm64 --bin cloudtrail-delta-lambda --output-format zip
	@ls -l $(LAMBDA_ZIP)

## deploy: build with SAM (cargo-lambda) and deploy, asking for the parameters.
deploy: $(VENV)/.installed
	$(VENV)/bin/sam build
	$(VENV)/bin/sam deploy --guided

## invoke-local: run the function in Docker on an event (needs Docker and AWS credentials):
## make invoke-local EVENT=events/s3-cloudtrail.json
EVENT ?= events/s3-cloudtrail.json
invoke-local: $(VENV)/.installed
	$(VENV)/bin/sam build
	$(VENV)/bin/sam local invoke IngestFunction -e $(EVENT)

## bench: ours against the peers (Python deltalake, DuckDB) and the decompression floor on the
## same generated files, one core; prints one table. BENCH_ARGS="--reps 5 --inputs one-100k"
BENCH_ARGS ?=
bench: $(VENV)/.bench
	command -v libdeflate-gunzip >/dev/null || apt-get install -y libdeflate-tools
	$(CARGO) build --release --bin cloudtrail-delta
	$(PYTHON) bench/run.py $(BENCH_ARGS)

## bench-modes: direct against batched delivery of 2 000 small log objects through the release
## Lambda binary on the emulator: commits, Parquet files, wall time, and a one-day query before
## and after `cloudtrail-delta maintain`. MODES_ARGS="--objects 500"
MODES_ARGS ?=
bench-modes: $(VENV)/.installed
	$(CARGO) build --release --bin cloudtrail-delta --bin cloudtrail-delta-lambda
	CLOUDTRAIL_DELTA_BIN=$(CURDIR)/target/release/cloudtrail-delta \
	CLOUDTRAIL_DELTA_LAMBDA_BIN=$(CURDIR)/target/release/cloudtrail-delta-lambda \
	$(PYTHON) bench/delivery_modes.py $(MODES_ARGS)

## bench-memory: peak memory of one writer after 100 and after 400 commits (one object each,
## as a warm direct-mode Lambda makes them). MEMORY_ARGS="--counts 100,400,1000"
MEMORY_ARGS ?=
bench-memory: $(VENV)/.installed
	$(CARGO) build --release --bin cloudtrail-delta
	$(PYTHON) bench/commit_memory.py $(MEMORY_ARGS)

## bench-file-memory: peak RSS of ingesting one ~100 MB and one ~1 GB log (interleaved runs),
## to see whether memory grows with the file. FILE_MEMORY_ARGS="--sizes 100mb,1gb,10gb --reps 5"
FILE_MEMORY_ARGS ?=
bench-file-memory: $(VENV)/.installed
	$(CARGO) build --release --bin cloudtrail-delta
	$(PYTHON) bench/file_memory.py $(FILE_MEMORY_ARGS)

## bench-scale: a cold ingest of a new object and of a day-1 object again, against tables whose
## history holds 1 k, 1 M, 10 M and 90 M objects (built synthetically at their worst point),
## on a local table and on moto_server's S3: wall time, peak RSS, checkpoint and index bytes,
## requests. SCALE_ARGS="--scales 1k,1m --stores local"
SCALE_ARGS ?=
bench-scale: $(VENV)/.installed
	$(CARGO) build --release --bin cloudtrail-delta
	$(PYTHON) bench/scale.py $(SCALE_ARGS)

## bench-commit-rate: commits a second of one table, modelled and measured, per commit mode at
## 1 and 4 concurrent writers, with a fixed latency injected on every S3 and DynamoDB request
## of the emulator; also the model at AWS's published latencies. RATE_ARGS="--commits 40"
RATE_ARGS ?=
bench-commit-rate: $(VENV)/.installed
	$(CARGO) build --release --bin cloudtrail-delta
	$(PYTHON) bench/commit_rate.py $(RATE_ARGS)

## soak: thousands of log objects through 32 concurrent invocations of the release Lambda binary,
## with S3/DynamoDB faults injected and processes killed at the crash points; an independent
## reader then checks every record is in the tables once. SOAK_ARGS="--objects 5000"
SOAK_ARGS ?=
soak: $(VENV)/.installed
	$(CARGO) build --release --bin cloudtrail-delta-lambda
	CLOUDTRAIL_DELTA_LAMBDA_BIN=$(CURDIR)/target/release/cloudtrail-delta-lambda $(PYTHON) tests/python/soak.py $(SOAK_ARGS)

$(VENV)/.bench: bench/requirements.txt $(VENV)/.installed
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	touch $@

tools: $(VENV)/.installed

$(VENV)/checkov/.installed: tests/lint/checkov-requirements.txt $(VENV)/.installed
	python3 -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/pip install --quiet --disable-pip-version-check -r tests/lint/checkov-requirements.txt
	touch $@

$(VENV)/.installed: tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

clean:
	rm -rf target $(VENV) delta .aws-sam
