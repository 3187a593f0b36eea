# The two commands of the README: `make demo` and `make test`. Both set everything up first (idempotent).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# The model `make setup` exports; the nodes and commands find it here instead of exporting one on first use.
export HAILO_WHISPER_MODEL_DIR ?= $(CURDIR)/models/tiny.en
# `make test` runs the whole suite on ROS 2 Kilted (.venv) and again on Jazzy (.venv-jazzy) the ROS tests whose
# code differs between the two rclpy releases: the lifecycle node, parameters set at run time, the launch file, the
# executables, the action server. The rest of test/ros runs the same rclpy calls, and repeating it costs 6 of CI's 20
# minutes; `make test ROS_DISTRO=jazzy JAZZY_TESTS=test/ros` runs all of it. `make test ROS_DISTRO=jazzy` (or kilted) runs one
# distribution. Only a ROS_DISTRO given on the command line chooses: a sourced ROS install sets it in the environment
# too.
ifeq ($(origin ROS_DISTRO),command line)
DISTROS := $(ROS_DISTRO)
else
DISTROS := kilted jazzy
endif
JAZZY_TESTS ?= test/ros/test_lifecycle_and_gate.py test/ros/test_launch_file.py test/ros/test_executables.py \
  test/ros/test_wake_phrase_gate.py test/ros/test_listen_action.py \
  test/ros/test_speech_recognition.py::test_runtime_parameters_valid_invalid_and_read_only

.PHONY: setup test demo clean

setup:
	@bash tools/setup.sh kilted

# The two-host test runs in a pytest process of its own: after the suite's other ROS tests in the same process, the
# nodes it starts in its network namespaces were not seen ready within 180 s (2 of 2 full runs on 2026-12-07), while
# in a process of its own it passes (5 of 5); the cause is not found yet.
OWN_PROCESS_TESTS := test/ros/test_two_hosts.py

# pytest exits 5 when a selection (PYTEST_ARGS=-k ...) matches no test: say so instead of failing the target.
test:
	@status=0; for distro in $(DISTROS); do \
	  bash tools/setup.sh $$distro || exit 1; \
	  if [ $$distro = kilted ]; then venv=$(VENV) runs="test --ignore=$(OWN_PROCESS_TESTS),$(OWN_PROCESS_TESTS)"; \
	  else venv=.venv-$$distro runs="$(JAZZY_TESTS)"; fi; \
	  IFS=, read -ra selections <<< "$$runs"; \
	  for tests in "$${selections[@]}"; do \
	    echo "make test: ROS 2 $$distro: pytest $$tests"; \
	    $$venv/bin/python -m pytest $$tests $(PYTEST_ARGS); rc=$$?; \
	    if [ $$rc -eq 5 ]; then echo "make test: no test matched the selection ($$distro)"; rc=0; fi; \
	    [ $$rc -eq 0 ] || status=$$rc; \
	  done; \
	done; exit $$status

demo: setup
	@$(VENV)/bin/hailo-whisper demo

clean:
	rm -rf build install log models $(VENV) $(VENV)-*
