# The two commands of the README: `make demo` and `make test`. Both set everything up first (idempotent).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# The model `make setup` exports; the nodes and commands find it here instead of exporting one on first use.
export HAILO_WHISPER_MODEL_DIR ?= $(CURDIR)/models/tiny.en

.PHONY: setup test demo clean

setup:
	@bash tools/setup.sh

# pytest exits 5 when a selection (PYTEST_ARGS=-k ...) matches no test: say so instead of failing the target.
test: setup
	@$(PY) -m pytest test $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no test matched the selection"; exit 0; fi; exit $$rc

demo: setup
	@$(VENV)/bin/hailo-whisper demo

clean:
	rm -rf build install log models $(VENV)
