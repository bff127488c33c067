# Two commands do everything on a fresh machine:
#   make run    set up .venv (if missing), install, then run every notebook (profile: demo)
#   make test   same set-up, then unit tests, the smoke end-to-end run and nbval over every notebook
# Both are idempotent: the venv is reused while pyproject.toml is unchanged, data and results are cached.

PYTHON  ?= $(shell command -v python3.11 || command -v python3)
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
COMPILED := $(VENV)/.compiled
PROFILE ?= demo
TEST_OUT ?= build/test-outputs
# torchattacks 3.5.1 pins requests~=2.25.1, which no current Jupyter accepts: install it alone, without deps.
REFERENCE := torchattacks==3.5.1
# The installer of the lock (make venv) and its resolver (make lock).
UV := uv==0.13.9

.PHONY: run test venv engines lock notebooks-clean lab benchmarks clean

# The speech synthesis engines and voices the corpus's spoofing systems run (helpers/data/synthesis.py):
# Debian packages, installed when missing and when running as root; otherwise the command is printed and
# the corpus is built without the missing systems (00 names them).
ENGINES := espeak-ng festival flite festvox-us-slt-hts festvox-ca-ona-hts festvox-kallpc16k festvox-kdlpc16k festvox-ru

venv: $(STAMP) $(COMPILED) engines

engines:
	@missing=""; for p in $(ENGINES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then echo "engines: no apt-get here; install$$missing yourself (the corpus is built without them)"; exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then (apt-get install -y --no-install-recommends$$missing || (apt-get update && apt-get install -y --no-install-recommends$$missing)) || echo "engines: could not install$$missing (the corpus is built without them)"; \
	else echo "engines: missing$$missing; run: sudo apt-get install -y --no-install-recommends$$missing"; fi

# Exact versions from requirements.lock (generated from pyproject.toml by `make lock`), then the
# package itself without resolving anything again. uv (MIT/Apache-2.0) installs the lock: it downloads and unpacks
# in parallel (52 s against pip's 181 s, 120 s without byte-compiling, from an empty cache; 2.7 GB of it are torch's
# CUDA wheels). tools/uv_install.py hands it pip's configured indexes; where uv cannot be installed or fails, pip
# installs the lock.
$(STAMP): pyproject.toml requirements.lock tools/uv_install.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	-$(BIN)/python -m pip install --quiet $(UV)
	$(BIN)/python tools/uv_install.py --quiet -r requirements.lock \
		|| (echo "venv: uv did not install the lock; pip installs it" && $(BIN)/python -m pip install --quiet -r requirements.lock)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip install --quiet --no-deps $(REFERENCE)
	touch $(STAMP)

# Then the venv's byte code, once per install (about 60 s on 2 cores): uv does not write it, and where
# PYTHONDONTWRITEBYTECODE is set (this development machine sets it) Python never caches what it compiles, so every
# process (each notebook, nbval kernel, test subprocess) compiled torch's, scipy's and pandas' sources again. A
# notebook's first cell took 18.5 s, 6.8 s after this step (python benchmarks/startup.py, before and after).
$(COMPILED): $(STAMP)
	-$(BIN)/python -m compileall -qq -j 0 $(VENV)/lib
	touch $(COMPILED)

# Refresh the lock after changing dependencies in pyproject.toml (uv, installed with the venv, resolves for Linux
# x86-64, Python 3.11).
lock: venv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --no-header -o requirements.lock

run: venv
	$(BIN)/python run_all.py --profile $(PROFILE)

# pytest-xdist, one thread per worker (OMP_NUM_THREADS=1): the end-to-end smoke run (tests/conftest.py puts it
# first) takes one worker while the unit tests take the other (with 2 threads per worker the workers fought over the
# cores: pytest 14 min 40 s against 12 min 41 s on one worker). Once its run is finished, the end-to-end test starts
# nbval over every notebook in the background, on a copy of that run (its caches make it a replay), and checks the
# interrupted and 2-process re-runs meanwhile: before, nbval ran after pytest, alone (3 min).
test: venv notebooks-clean
	rm -rf $(TEST_OUT)
	E2E_OUTPUT_DIR=$(abspath $(TEST_OUT)) E2E_DATA_DIR=$(abspath data) OMP_NUM_THREADS=1 $(BIN)/python -m pytest tests -q -n 2 --dist worksteal

notebooks-clean:
	$(BIN)/python tools/check_notebooks.py notebooks

lab: venv
	$(BIN)/jupyter lab notebooks

benchmarks: venv
	$(BIN)/python benchmarks/pixle_speed.py
	$(BIN)/python benchmarks/throughput.py

clean:
	rm -rf build $(VENV)
