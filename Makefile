# make run | make test | make expert ENV=hopper ALGO=sac | make test-cluster
VENV ?= .venv
PY := $(VENV)/bin/python
ENV ?= walker
ALGO ?= sac

.PHONY: install run test test-cluster expert clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	touch $@

run: install
	$(PY) run.py env=$(ENV) expert=$(ALGO)

# Test files run in parallel (one worker per core, at most 4); each file's tests share one worker and its fixtures.
test: install
	$(PY) -m pytest -q -n auto --maxprocesses 4 --dist loadfile

# Real engines on this machine: single-node Slurm (Debian packages, needs root) and a local Ray head.
test-cluster: install
	$(PY) -m pip install -q -e ".[test,cluster]"
	bash tests/cluster/run.sh

expert: install
	$(PY) experts/train.py env=$(ENV) expert=$(ALGO)

clean:
	rm -rf outputs multirun
