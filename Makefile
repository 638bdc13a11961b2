# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-quick lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Install and run the daemon on the bundled config.toml (SMTP on 127.0.0.1:8025, SQLite and
## outgoing Maildir under ./data/).
run: install
	$(BIN)/mailbot --config config.toml run

## Install everything (Python packages, libmagic, Dovecot where missing) and run all checks.
test: install
	sh scripts/install-system-deps.sh
	$(BIN)/ruff check mailbot tests bench
	$(BIN)/mypy mailbot
	$(BIN)/pytest

## The inner loop: the same checks without the long end-to-end tests (marked slow).
test-quick: install
	$(BIN)/ruff check mailbot tests bench
	$(BIN)/mypy mailbot
	$(BIN)/pytest -m "not slow"

lint: install
	$(BIN)/ruff check mailbot tests bench
	$(BIN)/mypy mailbot

## Load figures, not tests: each prints its numbers beside a same-run baseline.
bench: install
	for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache .mypy_cache
