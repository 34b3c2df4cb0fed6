# Speciosa: two commands on a fresh machine.
#   make demo   set up, load the synthetic demo clinic (SQLite) and serve it on http://127.0.0.1:8000
#   make test   set up (test extras; Debian's chromium when missing and root) and run every test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000

.PHONY: demo test install browser lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core; \
	  else echo "Debian's chromium is missing: run 'sudo apt-get install chromium' (browser tests will be skipped)"; fi; \
	fi

demo: install
	SPECIOSA_DEBUG=1 $(BIN)/speciosa migrate
	SPECIOSA_DEBUG=1 $(BIN)/speciosa demo
	SPECIOSA_DEBUG=1 $(BIN)/speciosa serve --port $(PORT)

test: install browser
	$(BIN)/ruff check --no-cache src tests benchmarks
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check --no-cache src tests benchmarks

clean:
	rm -rf $(VENV) var build *.egg-info src/*.egg-info
