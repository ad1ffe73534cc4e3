# The entry point for every habit: run, test, lint, bench.
.PHONY: run test lint bench install clean

VENV := .venv
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml constraints.txt scripts/install-python.sh
	scripts/install-python.sh

install: $(STAMP)

run: $(STAMP)
	scripts/docker.sh || echo "warning: no Docker engine; Moorage serves, but cannot deploy" >&2
	$(VENV)/bin/moorage serve

test: $(STAMP)
	scripts/test.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check moorage tests bench
	$(VENV)/bin/ruff format --check moorage tests bench
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(VENV)/bin/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
