# Speciosa: two commands on a fresh machine.
#   make demo   set up, load the synthetic demo clinic (SQLite) and serve it on http://127.0.0.1:8000
#   make test   set up (test extras; Debian's chromium when missing and root) and run every test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000

.PHONY: demo test install browser lint clean messages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# the .mo message catalogues are built from the .po files here, in Python (Babel): no gettext
install: $(STAMP)
	@$(BIN)/speciosa translations compile

# after marking strings: refresh the Spanish and Thai catalogues from the source (needs GNU
# gettext: apt-get install gettext), then translate the new entries (docs/translation.md)
messages: install
	@command -v xgettext >/dev/null || { echo "makemessages needs GNU gettext: apt-get install gettext"; exit 1; }
	cd src/speciosa && SPECIOSA_DEBUG=1 DJANGO_SETTINGS_MODULE=speciosa.settings ../../$(BIN)/django-admin makemessages -l es -l th \
	  --no-obsolete --add-location file -i 'locale/*'
	cd src/speciosa && SPECIOSA_DEBUG=1 DJANGO_SETTINGS_MODULE=speciosa.settings ../../$(BIN)/django-admin makemessages -d djangojs -l es -l th \
	  --no-obsolete --add-location file -i '*/vendor/*' -i '*/workbox/*' -i '*.min.js' -i '*sw.js'
	@SPECIOSA_DEBUG=1 $(BIN)/speciosa translations check || true

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
