# The two commands a new user needs: `make run` and `make test`.
# Both create .venv on first use and install the pinned stack from constraints.txt
# (torch 2.13.0 CPU wheel); later calls reuse it unless pyproject.toml or constraints.txt changed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# 2-core machines: keep torch from oversubscribing.
export OMP_NUM_THREADS ?= 2
export PYTHONHASHSEED = 0
# dvc.yaml stages call `python`: make it the project venv.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install run test test-all test-ui ci-pipeline ci-baseline lint ui serve params data clean help

help:
	@echo "make run   - install (once), build data/raw if missing, dvc repro, print evaluation table"
	@echo "make test  - install (once), run the fast test suite"
	@echo "make ui    - MLflow UI on http://127.0.0.1:5000"
	@echo "make serve - try models/export/model.onnx in a browser on http://127.0.0.1:8000"
	@echo "make ci-pipeline - experiment=ci pipeline in a temp copy, gated on metrics/baseline_ci.json"
	@echo "make ci-baseline - the same, rewriting metrics/baseline_ci.json (an intended change)"

install: $(STAMP)

# albumentations/albucore pull opencv-python-headless, which writes the same cv2/ files as
# opencv-contrib-python-headless minus the contrib modules (cv2.xphoto: the fsr baseline): whichever
# pip installed last wins. So reinstall contrib's cv2 when cv2.xphoto.inpaint is missing (a bare
# `cv2.xphoto` is no test: contrib's leftover cv2/xphoto/__init__.pyi imports as an empty namespace).
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@$(BIN)/python -c "import cv2; cv2.xphoto.inpaint" 2>/dev/null || { \
		echo "cv2 is opencv-python-headless's: reinstalling opencv-contrib-python-headless"; \
		$(BIN)/python -m pip install --quiet --force-reinstall --no-deps -c constraints.txt \
			opencv-contrib-python-headless; }
	@$(BIN)/python -c "import cv2; cv2.xphoto.inpaint" || \
		{ echo "cv2 has no xphoto (opencv-contrib-python-headless): see the Makefile"; exit 1; }
	@touch $(STAMP)
	@echo "installed into $(VENV)"

data: $(STAMP)
	@test -d data/raw || $(BIN)/inpaintlab data photos --out data/raw

params: $(STAMP)
	@$(BIN)/python -m inpaintlab.params

run: data params
	$(BIN)/dvc repro
	@$(BIN)/inpaintlab report metrics/eval.json --readme README.md

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ""

# The MLflow UI and `inpaintlab serve`'s page in headless Chromium, the team setup (mlflow server,
# DVC remote, PostgreSQL) and `mlflow models serve` of the registered model; marked slow.
test-ui: $(STAMP)
	$(BIN)/python -m pytest -q -m slow tests/test_ui.py tests/test_server.py tests/test_serve.py tests/test_serve_ui.py \
		tests/test_postgres_server.py

# CI's metric regression gate (docs/ci-and-teams.md): the ci pipeline on the CI dataset in a temp
# copy of the working tree, then inpaintlab check-metrics against the committed baseline.
ci-pipeline: $(STAMP)
	.ci/ci-pipeline

# Regenerate metrics/baseline_ci.json after an intended change to the model, training or eval.
ci-baseline: $(STAMP)
	.ci/ci-pipeline --update

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000

# The exported model in a browser (after `make run`), and POST /api/inpaint.
serve: $(STAMP)
	$(BIN)/inpaintlab serve --model models/export/model.onnx --host 127.0.0.1 --port 8000

clean:
	rm -rf data/prepared models metrics/eval.json reports
