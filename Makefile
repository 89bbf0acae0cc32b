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
	$(BIN)/vault-agent --vault $(DEMO_VAULT) doctor sample
	$(BIN)/vault-agent --vault $(DEMO_VAULT) notes sample

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q

bench: $(BIN)/.installed
	$(BIN)/python bench/bench_vault.py

clean:
	rm -rf $(VENV) $(DEMO_VAULT)
