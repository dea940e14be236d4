# The two commands of the README. Both set up .venv first (scripts/setup.sh, idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup run demo test lint bench

setup:
	@bash scripts/setup.sh

run: setup  ## the main job: the quickstart experiment on Ray, report in results/quickstart/
	$(PY) -m driftrec.experiments.cli run

demo: setup  ## a single-world demo of what drift does, report in results/demo/
	$(PY) -m driftrec.experiments.cli demo --out results/demo

test: setup  ## the whole test suite (slow cluster tests included)
	$(PY) -m pytest -q -n 2 --dist loadgroup

lint: setup  ## ruff (lint and format) and mypy, all clean
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy

bench: setup
	$(PY) benchmarks/env_throughput.py
	$(PY) benchmarks/agent_throughput.py
	$(PY) benchmarks/world_scaling.py
	$(PY) benchmarks/ray_scaling.py --skip-tune
	$(PY) benchmarks/rl_throughput.py
