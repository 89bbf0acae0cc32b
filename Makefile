# Two commands on a fresh machine (Python 3.11+ and make): `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEMO_VAULT := .demo-vault

.PHONY: demo test bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/.installed
	@test -d $(DEMO_VAULT)/sample || $(BIN)/vault-agent --vault $(DEMO_VAULT) init sample --template sample
	$(BIN)/vault-agent --vault $(DEMO_VAULT) run sample -m "Plan the Tokyo hand-off around my week"
	@echo "\n===== the note it wrote: memory/tokyo-files-hand-off-on-2027-01-27.md ====="
	@cat $(DEMO_VAULT)/sample/memory/tokyo-files-hand-off-on-2027-01-27.md
	@echo "\n===== its journal entry ====="
	@tail -n 7 $(DEMO_VAULT)/sample/journal/$$(date +%Y-%m)/$$(date +%F).md
	@echo "\n===== its log line ====="
	@grep '"kind":"run"' $(DEMO_VAULT)/sample/log/$$(date +%Y-%m)/$$(date +%F).jsonl | tail -n 1

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q

bench: $(BIN)/.installed
	$(BIN)/python bench/bench_vault.py

clean:
	rm -rf $(VENV) $(DEMO_VAULT)
