# The two commands of the README: `make demo` and `make test`. Both set everything up first (idempotent).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup test demo clean

setup:
	@bash tools/setup.sh

# pytest exits 5 when a selection (PYTEST_ARGS=-k ...) matches no test: say so instead of failing the target.
test: setup
	@$(PY) -m pytest test $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no test matched the selection"; exit 0; fi; exit $$rc

demo: setup
	@$(PY) -m hailo_whisper_ros.ros.demo

clean:
	rm -rf build install log models $(VENV)
