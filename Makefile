# Two commands do all the set-up on a fresh clone:
#   make run    creates .venv when missing, then runs the main job (export, parity, bench, report)
#   make test   creates .venv when missing, then runs the test suite (what CI runs), slowest 25 tests listed
#   make test-fast   the same without the slow tier (-m "not slow"): for before every commit
VENV   ?= .venv
PY     := $(VENV)/bin/python
SAMPLE ?= ../shared/data/imagenet-sample
OUT    ?= artifacts/run
# Offline by default: random (UNTRAINED) weights; real calibration images when the sample exists.
# `make run ARGS="--model mobilenet_v3_large"` keeps these defaults and overrides only what ARGS names:
# ARGS comes after them, and for a repeated option the last value wins (`ARGS="--weights CKPT"` replaces
# --weights random, the calibration images stay). `make run DEFAULTS=` drops the defaults.
# `make run` regenerates $(OUT): --force lets it replace the previous run there (it says what it replaced).
DEFAULTS ?= --weights random $(if $(wildcard $(SAMPLE)),--calib-data $(SAMPLE),)
ARGS     ?=
# The machines carry a local CPU-only torch wheel (pip's find-links) that breaks torchvision;
# ignore it and take the registry's build pinned in constraints.txt.
# The CUDA build is ~3 GB of wheels unpacked into ~5 GB: download and unpack on the clone's own disk
# (TMPDIR under .venv, not a possibly small /tmp) and keep no second copy in pip's cache.
PIP    := env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null TMPDIR=$(abspath $(VENV))/.pip-tmp PIP_NO_CACHE_DIR=1 $(VENV)/bin/pip

.PHONY: run test test-fast venv
venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	mkdir -p $(VENV)/.pip-tmp
	$(PIP) install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	rm -rf $(VENV)/.pip-tmp
	touch $@

run: $(VENV)/.installed
	@echo "make run: shrinkwrap run --out $(OUT) --force $(strip $(DEFAULTS) $(ARGS))"
	$(VENV)/bin/shrinkwrap run --out $(OUT) --force $(DEFAULTS) $(ARGS)

test: $(VENV)/.installed
	$(PY) -m pytest -q -rs --durations=25 $(PYTEST_ARGS)

test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -rs --durations=10 -m "not slow" $(PYTEST_ARGS)
