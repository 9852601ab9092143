# The two commands of the README. Everything they need is installed here, in .venv.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   := demo_output

.PHONY: demo test install clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	# torch first, pinned, so no dependency can pull the multi-GB CUDA build
	$(PY) -m pip install --quiet -c constraints.txt torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -n 2 Testing

demo: $(STAMP)
	$(VENV)/bin/cmsynth phantom --out $(DEMO)/phantom --cases 1 --seed 0 --overwrite
	@echo "Demo phantom case written to $(DEMO)/phantom/case_000"

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
