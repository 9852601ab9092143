# The two commands of the README. Everything they need is installed here, in .venv.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   := demo_output

.PHONY: demo test docs install browser clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	# torch first, pinned, so no dependency can pull the multi-GB CUDA build
	$(PY) -m pip install --quiet -c constraints.txt torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test,train,docs,web]"
	touch $(STAMP)

install: $(STAMP)

# Headless Chromium renders the evaluation report and drives the web pages in the tests; the web
# pages' server renders Slicer's views off screen with EGL (Mesa). Installed from Debian's
# packages when missing and running as root (CI); elsewhere the tests say how to install them.
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium (Debian package) for the report and web page tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "note: chromium not found; install it to run the report and web page tests"; fi
	@if ldconfig -p 2>/dev/null | grep -q libEGL_mesa; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Mesa's EGL (Debian packages) for the web pages' off-screen rendering"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libegl1 libegl-mesa0 libgl1-mesa-dri >/dev/null; \
	else echo "note: Mesa's EGL not found; install libegl-mesa0 and libgl1-mesa-dri to run the web page tests"; fi

test: $(STAMP) browser
	$(PY) -m pytest -q -n 2 Testing

# The documentation site (MkDocs, Material theme) into site/; --strict: a broken link or anchor
# fails the build. Testing/test_docs_build.py builds it in every test run (and so in CI).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# The main job on the bundled demo models: a CHAOS-size phantom case (never seen in training),
# synthetic CT + liver segmentation + overlays, scored against the phantom's true CT.
DEMO_CASE := $(DEMO)/phantom/case_000
demo: $(STAMP)
	$(VENV)/bin/cmsynth phantom --out $(DEMO)/phantom --cases 1 --seed 2000 --size chaos --overwrite
	$(VENV)/bin/cmsynth run --model demo-t1dual-to-ct --liver-model demo-liver-unet-t1in \
		--reference-ct $(DEMO_CASE)/ct_on_mr.nii.gz --out $(DEMO)/result --overwrite \
		$(DEMO_CASE)/t1_in.nii.gz $(DEMO_CASE)/t1_opp.nii.gz
	@echo "Phantom input (MRI, true CT, labels): $(DEMO_CASE)"

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache site
