# Everything runs in a project-local venv on Python 3.13.0 (pyenv); see docs/installation.md.
PYTHON_VERSION ?= 3.13.0
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test lint demo bench clean

$(STAMP): requirements.txt
	@if [ ! -x $(PY) ]; then \
		PYENV_VERSION=$(PYTHON_VERSION) python -m venv $(VENV) 2>/dev/null \
		|| python$(basename $(PYTHON_VERSION)) -m venv $(VENV); fi
	@$(PY) -c 'import sys; assert sys.version_info[:2] == (3, 13), sys.version' \
		|| (echo "Python 3.13 is required (pyenv: PYENV_VERSION=$(PYTHON_VERSION))"; exit 1)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	@# Real peers the tests start on loopback: PostgreSQL (session store) and mosquitto (MQTT).
	@# Installed from Debian's packages when missing; without them those tests skip and say so.
	@missing=""; \
	command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
		|| missing="$$missing postgresql"; \
	command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] \
		|| missing="$$missing mosquitto mosquitto-clients"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		{ apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; } \
		|| echo "could not install$$missing: the tests that need them will skip"; \
	fi
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest -p no:sugar -n 2 --cov --cov-report=term --cov-fail-under=90 tests

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

demo: $(STAMP)
	$(PY) -m tools.demo

bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) demo_config .pytest_cache .mypy_cache .ruff_cache .coverage
