# Two commands do all set-up on a fresh machine:
#   make demo   score examples/statement_pairs.jsonl with the embedded default model
#   make test   run the test suite (the same command .ci/run calls)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HASH   := $(shell cksum pyproject.toml | cut -d' ' -f1)
BASE   := $(VENV)/.installed-base-$(HASH)
TEST   := $(VENV)/.installed-test-$(HASH)
# Extra pip arguments for torch, e.g. TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_PIP_ARGS ?=

export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= true

.PHONY: demo test lint install clean

# The default install: the package and its pinned runtime dependencies only.
$(BASE): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: a bare torch requirement can pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0 $(TORCH_PIP_ARGS)
	$(BIN)/python -m pip install --quiet -e .
	rm -f $(VENV)/.installed-base-* && touch $(BASE)

# Tests also need the optional extras (onnx, ray) and the dev tools.
$(TEST): $(BASE)
	$(BIN)/python -m pip install --quiet -e ".[test]"
	rm -f $(VENV)/.installed-test-* && touch $(TEST)

install: $(BASE)

demo: $(BASE)
	$(BIN)/stance score --input examples/statement_pairs.jsonl --show id expected

test: $(TEST)
	$(BIN)/python -m pytest

lint: $(TEST)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
