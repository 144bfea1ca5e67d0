# The two commands of the README. Both create (or reuse) .venv by themselves.
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

# The main job: the end-to-end demo on an embedded local Ray.
demo: $(STAMP)
	$(VENV)/bin/ella-dist demo

# The whole test suite (what .ci/run calls).
test: $(STAMP)
	$(VENV)/bin/ruff check .
	RAY_AUTH_MODE=disabled $(VENV)/bin/python -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/ella-dist bench paper

clean:
	rm -rf $(VENV) build *.egg-info
