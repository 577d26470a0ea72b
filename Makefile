# Two entry points for a fresh machine: `make demo` (set up + run the main job on a small
# built-in default) and `make test` (set up + run the test suite, as CI does).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO ?= runs/demo

.PHONY: install lock lint demo test test-all bench reproduce reproduce-robustness reproduce-power figure2 clean

# The suite's dependencies at the exact versions it passed with (.ci/constraints.txt), so that a
# fresh install meets no version nobody ran; pyproject.toml keeps the floors users install against.
CONSTRAINTS ?= .ci/constraints.txt
$(BIN)/awmctl: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[test]'
	@touch $@

# Resolve the newest versions pyproject.toml allows in a scratch venv and write them as the lock;
# then `make test` (which installs them) and commit .ci/constraints.txt if it passes.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet -e '.[test]'
	head -4 $(CONSTRAINTS) > $(CONSTRAINTS).new
	.venv-lock/bin/python -m pip freeze --exclude-editable | grep -v '^awmctl' >> $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)
	rm -rf .venv-lock

install: $(BIN)/awmctl

# The paper's pipeline on CANCER at H = 20, small budgets (about a minute on 2 cores): the task's
# score references (cached), so that the policies' summaries report a score, and at the end the
# return landscape around the learnt policy, through the model and through the simulator, and the
# two policies side by side (`awmctl show`, their learning curves in policies.png).
demo: install
	$(BIN)/awmctl tasks
	$(BIN)/awmctl collect --task cancer --horizon 20 --episodes 512 --seed 0 --out $(DEMO)/data --overwrite
	$(BIN)/awmctl fit-model --data $(DEMO)/data --model awm-lstm --steps 600 --out $(DEMO)/awm-lstm --overwrite
	$(BIN)/awmctl references --task cancer --horizon 20
	$(BIN)/awmctl optimize-policy --model $(DEMO)/awm-lstm --data $(DEMO)/data --steps 300 --seeds 2 --out $(DEMO)/policy --overwrite
	$(BIN)/awmctl optimize-policy --model simulator --task cancer --horizon 20 --steps 300 --seeds 2 --out $(DEMO)/policy-simulator --overwrite
	$(BIN)/awmctl landscape --model $(DEMO)/awm-lstm --policy $(DEMO)/policy --points 21 --out $(DEMO)/landscape --overwrite
	$(BIN)/awmctl show $(DEMO)/policy $(DEMO)/policy-simulator --plot $(DEMO)/policies.png

# The style and the layers contract first (pyproject.toml: [tool.ruff], [tool.importlinter]): a
# lint error, an unformatted file, an upward import or a cycle fails before any test runs. Two
# workers: the suite is mostly single-threaded compilation, and CI has two cores.
LINTED := awmctl tests benchmarks docs
lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest -n 2 --dist worksteal $(PYTEST_ARGS)

# Everything, including the tests marked slow.
test-all: lint
	$(BIN)/python -m pytest -n 2 --dist worksteal -m ""

bench: install
	$(BIN)/python benchmarks/collect.py

# The paper's Figure 5 grid (8 tasks x H 20, 100 x 7 methods, 3 seeds; docs/results.md section 4).
# Resumable: rerun to continue. One process per core: a single run keeps about one core busy
# (two processes finish twice the rows of one; docs/benchmarks.md), so SHARDS defaults to the
# number of cores. On a cluster, run `benchmarks/reproduce.py --shard I/N` as array job I of N.
SHARDS ?= $(shell nproc)
REPRODUCE_ARGS ?=
reproduce: install
	mkdir -p runs
	for i in $$(seq 0 $$(($(SHARDS) - 1))); do 	  $(BIN)/python benchmarks/reproduce.py --shard $$i/$(SHARDS) $(REPRODUCE_ARGS) > runs/reproduce-shard$$i.log 2>&1 & 	done; wait
	$(BIN)/python benchmarks/reproduce.py --report

# The robustness runs (docs/results.md section 5), into the same rows.
reproduce-robustness:
	$(MAKE) reproduce REPRODUCE_ARGS="--tasks cancer,bacteria --horizons 100 --methods awm-transformer,markov-mlp,sac \
	  --variants clean,distractors=4,distractors=16,noise=0.01,noise=0.1"

# The paper's question with its power (docs/results.md section 9): every world model at H = 100
# with 10 seeds (the grid's 3-seed rows grow: only seeds 3-9 run), the same at the converged
# defaults with 3 seeds, then the aggregate metrics, the per-task tests and the page's summary.
# CPU time on this 2-core EPYC, from the grid's rows: about 19 core-hours for the 10-seed rows (the
# state-space AWM alone about 6.5; the GRU and RNN AWMs, new to the grid, 4.4) and 6 for the
# converged rows. Resumable and sharded: rerun to continue.
POWER_METHODS ?= simulator,markov-mlp,awm-lstm,hwm-transformer,awm-transformer,awm-gru,awm-rnn,awm-ssm
POWER_TASKS ?= cancer,hiv-treatment,mould-fungicide,bacteria,bear-populations,bioreactor,predator-prey,glucose
reproduce-power: install
	$(MAKE) reproduce REPRODUCE_ARGS="--horizons 100 --tasks $(POWER_TASKS) --methods $(POWER_METHODS) --seeds 10"
	$(MAKE) reproduce REPRODUCE_ARGS="--horizons 100 --tasks $(POWER_TASKS) --methods $(POWER_METHODS) --preset converged"
	$(BIN)/python benchmarks/power.py --doc docs/results.md

# The paper's Figure 2: BPO of the double pendulum's first action (docs/results.md section 6).
figure2: install
	$(BIN)/python benchmarks/figure2.py

clean:
	rm -rf $(VENV) runs .pytest_cache
