# Feedback Studio: `make run` starts the app, `make test` runs every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8501
API_PORT ?= 8502

.PHONY: run test test-fast bench bench-jobs bench-api bench-labels bench-baselines bench-multilabel bench-topics bench-zero-shot bench-few-shot bench-choice bench-active bench-app bench-scale bench-quality install install-dev clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamp files re-run pip only when the requirement files change.
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# The app, the training worker and the HTTP API (docs at http://127.0.0.1:$(API_PORT)/docs); stopping the app
# (Ctrl-C) stops all three, and a run in training is queued again for the next start.
run: install
	$(BIN)/python -m core worker & worker=$$!; $(BIN)/python -m core api --port $(API_PORT) & api=$$!; \
	trap 'kill $$api $$worker 2>/dev/null; wait $$worker' EXIT INT TERM; \
	$(BIN)/streamlit run Home.py --server.port $(PORT)

# Everything: the tests on every core, then the browser tests in two processes (a browser test waits on the served
# app most of the time; each has an app of its own or one whose accounts exist already); each part names its ten slowest tests at the end (what to trim when the run grows).
test: install-dev
	$(BIN)/python -m pytest -n auto -m "not e2e" --durations=10
	$(BIN)/python -m pytest -n 2 --dist worksteal -m e2e --durations=10

# The fast set while developing: no slow or browser tests, on every core (about 70 s on 2 cores); it touches
# every package and runs the import contracts. `make test` runs everything.
test-fast: install-dev
	$(BIN)/python -m pytest -n auto -m "not slow and not e2e"

# Speed against the plain Hugging Face way (prints figures and a key: value summary; a few minutes).
bench: install
	$(BIN)/python -m bench.inference
	$(BIN)/python -m bench.training

# A 10,000-line file on the Classify page in Chromium while another user browses (needs the test tools).
# Big files as jobs: memory from 100,000 to 1,000,000 rows, throughput against the predictor, one and two workers.
bench-jobs: install
	$(BIN)/python -m bench.file_jobs $(ARGS)

# The HTTP API under load: 1, 5 and 20 concurrent clients, micro-batching on and off (p50/p95, texts/s).
bench-api: install
	$(BIN)/python -m bench.api_load $(ARGS)

bench-app: install-dev
	$(BIN)/python -m bench.classify_load

# Two app servers, two workers and PostgreSQL under 20 browser sessions while runs train and a worker is killed
# (needs the test tools: Chromium, PostgreSQL; about 15 minutes). Options with ARGS, e.g. ARGS="--sessions 4".
bench-scale: install-dev
	$(BIN)/python -m bench.scale $(ARGS)

# Test macro-F1 of every model kind on the demo set, the UCI sentences and CLINC150 (about an hour;
# needs ../shared/data or --data-dir). Pass options with ARGS, e.g. ARGS="--sets uci --repeat ''".
bench-quality: install
	$(BIN)/python -m bench.quality $(ARGS)

# Which texts to label next: the Label page's choice against random draws, four sets, three seeds (~4 min).
bench-active: install
	$(BIN)/python -m bench.active_learning $(ARGS)

# Model choice: is the recommended run the test winner (or rightly unsure)? Five sets, three seeds (~40 min).
bench-choice: install
	$(BIN)/python -m bench.model_choice $(ARGS)

# Several tags per text: every kind on GoEmotions with one 0.5 threshold and with per-tag thresholds (the
# baselines about 5 minutes, the transformer about 30 more). Pass options with ARGS, e.g. ARGS="--models tfidf_logreg".
bench-multilabel: install
	$(BIN)/python -m bench.multilabel $(ARGS)

# Topic discovery against hidden labels (CLINC150 intents, UCI sentences by site, demo): AMI against k-means
# told the number of labels, unassigned share, seconds per 10,000 texts (about 5 minutes).
bench-topics: install
	$(BIN)/python -m bench.topics $(ARGS)

# 8 labelled texts per label: TF-IDF + LR, embeddings + LR, zero-shot (and few-shot once it exists), about 3 minutes.
bench-few-shot: install
	$(BIN)/python -m bench.few_shot $(ARGS)

# Zero-shot by label names on CLINC150, the UCI sentences and the demo set (about 2 minutes).
bench-zero-shot: install
	$(BIN)/python -m bench.zero_shot $(ARGS)

# How many randomly flipped labels the suspicious-label check finds (demo, UCI, CLINC150; about a minute).
bench-labels: install
	$(BIN)/python -m bench.labels $(ARGS)

# The TF-IDF + LR baseline on clean and noisy labels against its earlier iteration cap (about 3 minutes).
bench-baselines: install
	$(BIN)/python -m bench.baselines $(ARGS)

clean-venv:
	rm -rf $(VENV)
