# The two commands of the README. Both create (or reuse) .venv by themselves.
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean proto

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

# Regenerate the gRPC/protobuf stubs from proto/ into ella_dist/_generated/ (committed;
# tests/server/test_generated.py checks they match the .proto).
proto:
	$(VENV)/bin/python -m grpc_tools.protoc -I proto --python_out=ella_dist/_generated \
		--pyi_out=ella_dist/_generated --grpc_python_out=ella_dist/_generated proto/ella/v1/ella.proto
	touch ella_dist/_generated/ella/__init__.py ella_dist/_generated/ella/v1/__init__.py

clean:
	rm -rf $(VENV) build *.egg-info
