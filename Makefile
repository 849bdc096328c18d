# pyg_em — every target builds its own virtual environment on first use, so each works on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYG_WHEELS ?= ../shared/wheels
PYG_EM_DATA ?= $(abspath ../shared/data/planetoid)
export PYG_EM_DATA
export PYG_EM_CACHE ?= $(abspath .cache)
PIP := $(PY) -m pip install --disable-pip-version-check -q -c constraints.txt
STAMP := $(VENV)/.installed

.PHONY: demo test lint docs bench fuzz install clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q --upgrade pip
	# torch first, pinned, so that nothing resolves a CUDA build.
	$(PIP) torch
	# torch_scatter/torch_sparse: prebuilt wheels when a wheelhouse exists, else a source build against torch.
	if [ -d "$(PYG_WHEELS)" ]; then \
	  $(PIP) --find-links "$(PYG_WHEELS)" torch_scatter torch_sparse; \
	else \
	  MAX_JOBS=2 FORCE_ONLY_CPU=1 $(PIP) --no-build-isolation torch_scatter torch_sparse; \
	fi
	# pyg_lib (faster neighbour sampling) is optional: only from a wheelhouse, never required.
	-if [ -d "$(PYG_WHEELS)" ]; then $(PIP) --find-links "$(PYG_WHEELS)" pyg_lib || \
	  echo "pyg_lib unavailable: NeighborLoader falls back to torch_sparse's sampler"; fi
	$(PIP) -e '.[test,docs,dev,data]'
	touch $@

install: $(STAMP)

# The main job: one real run on Cora when the raw files are present, else on the built-in SBM (no download).
DEMO_METHOD ?= daegc
demo: $(STAMP)
	@if [ -f "$(PYG_EM_DATA)/Cora/raw/ind.cora.x" ]; then ds=cora; else ds=sbm; fi; \
	out=runs/demo-$(DEMO_METHOD)-$$ds; \
	$(VENV)/bin/pyg-em run $(DEMO_METHOD) --dataset $$ds --progress --out $$out && ls -l $$out

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

test: $(STAMP) lint
	$(PY) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc
	$(MAKE) docs

docs: $(STAMP)
	$(VENV)/bin/sphinx-build -n -W --keep-going -q -b html docs docs/_build/html

# The fuzz harnesses (tests marked `fuzz`) at the full case count; `make test` runs them CI-sized.
fuzz: $(STAMP)
	PYG_EM_FUZZ_CASES=2000 $(PY) -m pytest -m fuzz

# Mutation testing of nn/clusters/models/linalg/utils (config: [tool.mutmut] in pyproject.toml); slow, not in CI.
# It mutates a clone of HEAD in MUTATE_DIR (the commit is printed; `rm -rf` the folder to take newer commits),
# never the live tree, with decorated functions made mutable there (tests/mutation_prepare.py), at nice 19.
# MUTANTS narrows the run, e.g. make mutate MUTANTS='pyg_em.nn.*'; the score per module is printed at the end.
# On a busy machine, tests/mutation_run.py checks chosen (or sampled) mutants of that copy in a given order.
MUTANTS ?=
MUTATE_JOBS ?= 2
MUTATE_DIR ?= .cache/mutate
mutate: $(STAMP)
	test -d $(MUTATE_DIR) || (git clone -q . $(MUTATE_DIR) && ln -s $(abspath $(VENV)) $(MUTATE_DIR)/.venv \
	  && $(PY) tests/mutation_prepare.py $(MUTATE_DIR))
	git -C $(MUTATE_DIR) log -1 --format='mutating commit %h (%cd)'
	cd $(MUTATE_DIR) && OMP_NUM_THREADS=1 nice -n 19 .venv/bin/mutmut run --max-children $(MUTATE_JOBS) $(MUTANTS)
	$(PY) tests/mutation_score.py $(MUTATE_DIR)/mutants

bench: $(STAMP)
	$(PIP) '.[bench]'
	$(PY) -m benchmarks.run_all

clean:
	rm -rf $(VENV) docs/_build .cache runs .pytest_cache
