# The entry point for every habit: run, test, lint, bench.
.PHONY: run test lint bench install clean web api-client

VENV := .venv
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml constraints.txt scripts/install-python.sh
	scripts/install-python.sh

install: $(STAMP)

run: $(STAMP)
	scripts/docker.sh || echo "warning: no Docker engine; Moorage serves, but cannot deploy" >&2
	scripts/web.sh
	scripts/caddy.sh >/dev/null || echo "warning: no Caddy; Moorage serves without domains (MOORAGE_PROXY=none)" >&2
	$(VENV)/bin/moorage serve

# The UI: locked node packages and a fresh build in web/build.
web:
	scripts/web.sh

# Regenerate the UI's API client from this version's OpenAPI document (commit the result).
api-client: $(STAMP)
	$(VENV)/bin/moorage openapi > web/src/lib/api/openapi.json
	cd web && npx openapi-typescript src/lib/api/openapi.json -o src/lib/api/schema.d.ts

test: $(STAMP)
	scripts/test.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check moorage tests bench
	$(VENV)/bin/ruff format --check moorage tests bench
	$(VENV)/bin/mypy
	scripts/web.sh && cd web && npm run --silent check

bench: $(STAMP)
	$(VENV)/bin/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis test-output web/node_modules web/build web/.svelte-kit
