# Quick start:  `make demo`  (set up, then run the main job on the bundled samples)
#               `make test`  (set up, then run the whole test suite)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
MEDTL  := $(VENV)/bin/medtl
OUT    ?= out

.PHONY: setup test-data demo app test bench package installer installer-nsis-check clean

setup: $(VENV)/.installed

# torch is pinned and installed first so that pip never resolves a multi-GB build we do not want. TORCH_INDEX chooses
# the build (and so the installer's, packaging/README.md): https://download.pytorch.org/whl/cpu (CPU only) or
# https://download.pytorch.org/whl/cuXYZ (a CUDA build; see pytorch.org for the CUDA versions of torch 2.13); unset, pip's own
# configuration decides (PyPI: CUDA on Linux x86-64).
TORCH_INDEX ?=
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0 torchvision==0.28.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -e ".[test]"
	touch $@

demo: setup
	$(MEDTL) scan "$$($(MEDTL) sample --path)"
	$(MEDTL) convert "$$($(MEDTL) sample --path)/98892001/CT5N" -o $(OUT)/sample_ct.nii.gz
	QT_QPA_PLATFORM=offscreen $(MEDTL) app --screenshot $(OUT)/app.png
	@echo "The app on the sample study: $(OUT)/app.png (run 'make app' for a real window)"
	$(MEDTL) demo --out $(OUT)/demo

app: setup
	$(MEDTL) app

test: setup test-data
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

# Test data from Debian for the orientation task (medtl/data/tasks.py): the Colin27 head (package mricron-data)
# and ITK's whole-head T1 example (package insighttoolkit5-examples, 1.7 MB, no dependencies).
COLIN27 := $(or $(MEDTL_COLIN27),/usr/share/mricron/templates/ch2.nii.gz)
ITK_T1 := $(or $(MEDTL_ITK_T1),/usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1UCharRaw.nii.gz)
test-data:
	@{ test -f "$(COLIN27)" && test -f "$(ITK_T1)"; } || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq >/dev/null \
	    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mricron-data insighttoolkit5-examples >/dev/null; } \
	    || echo "warning: $(COLIN27) or $(ITK_T1) is missing: install Debian's mricron-data and insighttoolkit5-examples (sudo apt-get install mricron-data insighttoolkit5-examples) or set MEDTL_COLIN27 and MEDTL_ITK_T1; the orientation-task tests will fail"

# The installer payload (dist/medtl/, see packaging/README.md) and its smoke test (which runs `medtl --self-test`).
# MEDTL_BUNDLE_ASTRA=1 also bundles the 235 MB Astra 3D CT encoder (the CUDA build's choice).
package: setup
	$(PY) -m pip install -q "pyinstaller>=6.10,<7"
	$(VENV)/bin/pyinstaller --noconfirm --log-level WARN packaging/medtl.spec
	bash packaging/smoke_test.sh dist/medtl/medtl

# The Linux installer, dist/medtl_VERSION_ARCH.deb, from the payload (built first if missing); packaging/linux/test_deb.sh tests it as root.
installer:
	test -x dist/medtl/medtl || $(MAKE) package
	bash packaging/linux/build_deb.sh dist/medtl dist

# Compiles the Windows setup script (packaging/windows/medtl.nsi) with Debian's makensis against the Linux payload, as a
# stand-in: checks the script, not a Windows build (packaging/README.md). Needs `apt-get install nsis`.
installer-nsis-check:
	test -x dist/medtl/medtl || $(MAKE) package
	makensis -V2 -WX -DCHECK -DVERSION=$$($(PYTHON) -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])') \
	    -DPAYLOAD=$(abspath dist/medtl) -DOUTFILE=$(abspath dist/medtl-setup-check.exe) packaging/windows/medtl.nsi
	@ls -l dist/medtl-setup-check.exe

bench: setup
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache build dist
