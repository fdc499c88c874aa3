# Set-up and the two commands of the README. Torch defaults to the CPU build;
# GPU users: make demo TORCH_SPEC="torch==2.13.0" PIP_EXTRA="--index-url ..." or any spec.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: install demo test lint bench results clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[dev,ray,optuna]"
	touch $@

demo: install
	$(BIN)/python -m tnas.search --dataset cifar100 --method tnas --budget 50 --seed 0 --out runs/demo/cifar100-tnas
	$(BIN)/python -m tnas.search --dataset cifar100 --method re --budget 50 --seed 0 --out runs/demo/cifar100-re
	$(BIN)/python -m tnas.compare runs/demo

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python -m benchmarks.foundation
	$(BIN)/python -m benchmarks.encoders
	$(BIN)/python -m benchmarks.meta_train --surrogates 5 --jobs 2
	$(BIN)/python -m benchmarks.tnas_search
	$(BIN)/python -m benchmarks.training

# The NAS-Bench-201 comparison: the meta-trained surrogates (5 draws per target, each an
# ensemble of 2; single models for tnas-nodata and its comparison), then the grid at 200 epochs
# (benchmarks/RESULTS.md) and at 12 epochs (benchmarks/RESULTS-fidelity12.md), with their
# figures, and TNAS with single kernels (benchmarks/single-kernel/RESULTS.md, the fair
# comparison for tnas-nodata), the parallel grids, the latency-constrained grid
# (benchmarks/RESULTS-constrained.md) and the history experiment (benchmarks/RESULTS-history.md). Hours on 2 cores; finished work is skipped, so it can be stopped and restarted.
# Peers need: pip install -e ".[peers]" (see the README).
GRID := --seeds 10 --budget 100 --set tnas-nodata:members=1
results: install
	OMP_NUM_THREADS=1 $(BIN)/python -m benchmarks.meta_train --surrogates 5 --jobs 2 --variants tnas --skip-untrained
	OMP_NUM_THREADS=1 $(BIN)/python -m benchmarks.meta_train --surrogates 5 --members 1 --jobs 2 --variants tnas,tnas-nodata --skip-untrained
	OMP_NUM_THREADS=1 $(BIN)/python -m benchmarks.nb201 --observe mean,seed $(GRID)
	OMP_NUM_THREADS=1 $(BIN)/python -m benchmarks.nb201 --observe mean --fidelity 12 $(GRID) \
		--out benchmarks/results-fidelity12 --results-page benchmarks/RESULTS-fidelity12.md
	OMP_NUM_THREADS=1 $(BIN)/python -m benchmarks.nb201 --methods tnas --set tnas:members=1 --observe mean \
		--seeds 10 --budget 100 --out benchmarks/results-single --results-page benchmarks/single-kernel/RESULTS.md
	for workers in 4 16; do OMP_NUM_THREADS=1 $(BIN)/python -m benchmarks.nb201 --methods tnas,re,rs --observe mean \
		--seeds 10 --budget 100 --workers $$workers --out benchmarks/results-w$$workers \
		--results-page benchmarks/results-w$$workers/RESULTS.md || exit 1; done
	$(BIN)/python -m benchmarks.parallel report
	OMP_NUM_THREADS=1 $(BIN)/python -m benchmarks.nb201 --methods rs,re,ls,reinforce,nasbowl --observe mean,seed \
		--seeds 10 --budget 100 --out benchmarks/results-baselines --results-page benchmarks/baselines/RESULTS.md
	OMP_NUM_THREADS=1 $(BIN)/python -m benchmarks.oneshot --seeds 3
	OMP_NUM_THREADS=1 $(BIN)/python -m benchmarks.constrained --methods tnas,tnas-prior,zero-shot,re,rs --seeds 10 --budget 50
	OMP_NUM_THREADS=1 $(BIN)/python -m benchmarks.history --draws 3 --seeds 10 --budget 100

clean:
	rm -rf $(VENV) runs .pytest_cache
