# Every target is self-sufficient on a fresh machine: it creates or reuses .venv and installs what is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export NO_ALBUMENTATIONS_UPDATE := 1
export HF_HUB_OFFLINE := 1
export TRACKIO_DIR ?= $(CURDIR)/runs/trackio
export MPLBACKEND := Agg

.PHONY: install test lint predict serve clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[train,serve,test,ray]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check agegender tests
	$(VENV)/bin/ruff format --check agegender tests

predict: $(STAMP)
	$(VENV)/bin/agegender predict agegender/serving/examples/astronaut.jpg

serve: $(STAMP)
	$(VENV)/bin/agegender serve

clean:
	rm -rf $(VENV) runs
