# cloudtrail-delta: the two commands are `make demo` and `make test`.

VENV   := .venv
PYTHON := $(VENV)/bin/python
CARGO  ?= cargo

.PHONY: demo test build clean

## demo: build, then ingest the bundled sample logs into ./delta/ and print what landed.
demo:
	$(CARGO) build --release --bin cloudtrail-delta
	./target/release/cloudtrail-delta ingest samples
	@echo
	@echo "Parquet files by table and partition:"
	@find delta -name '*.parquet' | sed -E 's|/part-[^/]+$$||' | sort | uniq -c

## test: every test (Rust unit and integration tests, then the independent Python reader),
## installing the Python packages it needs into $(VENV).
test: $(VENV)/.installed
	$(CARGO) test --all-targets  # also builds target/debug/cloudtrail-delta for the Python test
	$(PYTHON) -m pytest -q tests/python

build:
	$(CARGO) build --release

$(VENV)/.installed: tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

clean:
	rm -rf target $(VENV) delta
