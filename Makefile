# gan-rnn-lab: `make help` lists the targets.
# Every target that runs Python first makes sure .venv exists and is up to date with pyproject.toml.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
GAN_CONFIGS := $(notdir $(basename $(wildcard configs/gan/*.yaml)))
RNN_CONFIGS := $(filter-out protocol gradient_flow,$(notdir $(basename $(wildcard configs/rnn/*.yaml))))  # fragments out
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install test test-fast lint bench sweep-palindrome gradient-flow report clean train-classifier evaluate \
	experiment ring grid stacked-mnist results \
	$(addprefix train-,$(subst _,-,$(GAN_CONFIGS)) $(RNN_CONFIGS))

help:  ## list the targets
	@echo "gan-rnn-lab targets (extra CLI arguments: make TARGET ARGS='--trainer.max_epochs=3'):"
	@grep -hE '^[a-zA-Z0-9_%-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-22s %s\n", $$1, $$2}'
	@echo "  GAN experiments:      $(addprefix train-,$(subst _,-,$(GAN_CONFIGS)))"
	@echo "  RNN experiments:      $(addprefix train-,$(RNN_CONFIGS))"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_PINS) -e '.[dev]'   # one resolver pass: the pins with the rest
	@touch $@

install: $(STAMP)  ## create .venv and install the suite (torch 2.14.1, torchvision 0.29.1, the rest from pyproject)

test: $(STAMP)  ## run the whole test suite (what CI runs): 2 workers of one torch thread each
	$(PY) -m pytest -q -n 2 --dist loadfile

test-fast: $(STAMP)  ## run the tests that are not marked slow or ddp
	$(PY) -m pytest -q -m "not slow and not ddp"

lint: $(STAMP)  ## ruff lint + format check
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

# make train-<cell> for every configs/rnn/<cell>.yaml
$(addprefix train-,$(RNN_CONFIGS)): train-%: $(STAMP)  ## train an RNN config, e.g. make train-lstm
	$(PY) -m rnn_lab fit --config configs/base.yaml --config configs/rnn/$*.yaml $(ARGS)

# make train-<family> for every configs/gan/<family>.yaml (underscores become dashes: wgan_clip -> train-wgan-clip)
# (a static pattern rule: make skips plain pattern rules for .PHONY targets, so `train-%:` alone did nothing)
$(addprefix train-,$(subst _,-,$(GAN_CONFIGS))): train-%: $(STAMP)  ## train a GAN family, e.g. make train-wgan
	$(PY) -m gan_lab fit --config configs/base.yaml --config configs/gan/$(subst -,_,$*).yaml $(ARGS)

train-classifier: $(STAMP)  ## retrain the MNIST classifier behind FID/IS/coverage (lab/weights/, ~15 min on CPU)
	$(PY) -m gan_lab.classifier $(ARGS)

evaluate: $(STAMP)  ## FID, KID, IS, precision/recall/density/coverage, class coverage of a checkpoint: make evaluate CKPT=path.ckpt [ARGS='--n 2000']
	@test -n "$(CKPT)" || { echo "error: name the checkpoint: make evaluate CKPT=runs/<run>/version_0/checkpoints/<file>.ckpt" >&2; exit 2; }
	$(PY) -m gan_lab evaluate --ckpt "$(CKPT)" $(ARGS)

sweep-palindrome: $(STAMP)  ## the palindrome study: make experiment E=palindrome (ARGS='--variants lstm.chrono.L100')
	$(PY) -m lab experiment run experiments/palindrome.yaml $(ARGS)

gradient-flow: $(STAMP)  ## ||dL/dh_t|| over time at initialisation per cell and init, a PNG (after training: make experiment E=gradient_flow)
	$(PY) -m rnn_lab gradient-flow $(ARGS)

RUNS ?=
report: $(STAMP)  ## compare runs in one page: make report [RUNS="runs/a runs/b"] (default all of runs/) -> runs/report/
	$(PY) -m gan_lab report $(if $(strip $(RUNS)),$(RUNS),--root runs) $(ARGS)

E ?=
experiment: $(STAMP)  ## run an experiment on Ray: make experiment E=ring [ARGS='--seeds 0 1 --set trainer.max_epochs=2']
	@test -n "$(E)" || { echo "error: name the experiment: make experiment E=<name> (one of: $(notdir $(basename $(wildcard experiments/*.yaml))))" >&2; exit 2; }
	$(PY) -m lab experiment run experiments/$(E).yaml $(ARGS)

ring grid: $(STAMP)  ## mode collapse on the 8-ring / 25-grid: every mixture family x 5 seeds (make experiment E=ring)
	$(PY) -m lab experiment run experiments/$@.yaml $(ARGS)

stacked-mnist: $(STAMP)  ## DCGAN then Unrolled GAN (k=10) on Stacked MNIST, the Unrolled paper's nets and budget (GPU-scale)
	$(PY) -m gan_lab fit --config configs/base.yaml --config configs/stacked/metz.yaml --config configs/stacked/metz.dhalf.yaml $(ARGS)
	$(PY) -m gan_lab fit --config configs/base.yaml --config configs/stacked/metz.yaml --config configs/stacked/metz.dhalf.yaml --config configs/stacked/metz.unrolled.yaml $(ARGS)

results: $(STAMP)  ## RESULTS.md from the run records under results/ (make experiment E=... makes them)
	$(PY) -m lab results $(ARGS)

bench: $(STAMP)  ## run every benchmark in bench/ (prints ratios)
	@for f in bench/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:  ## remove run outputs (runs/, wandb files); keeps .venv
	rm -rf runs lightning_logs wandb
