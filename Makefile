# poolbench's Makefile.
#
#   make            install missing Debian packages (see deps), build everything
#   make deps       install what is missing: as root with apt-get, otherwise
#                   print the exact command to run
#   make test       build, then run every test, each case in its own process
#   make sanitize   the tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make tsan       the tests under ThreadSanitizer
#   make valgrind   the engine tests under valgrind (leaks, bad reads)
#   make valgrind-quick  only the engine's cmocka cases (in make test)
#   make run        the main job: build, run every scenarios/*.lua once with its
#                   defaults (printing each table), then draw every figure
#   make plots      the same runs and figures: plots/out/*.png and *.svg
#                   (plots/data.sh, then plots/draw.sh); nothing tracked changes
#   make figures    only redraw the figures from the data of the last make plots
#   make docs-img   copy the last figures into docs/img/, the copies the README
#                   and the docs show (then commit them)
#   make bench      the benchmarks (figures, not pass/fail): the engine's
#                   overhead (bench/overhead), the pool's start-up per worker
#                   (bench/startup), MPI's overhead beside them (bench/mpi_overhead.sh:
#                   a run of its own, since overhead forks), then every scenario x strategy
#                   timed by hyperfine beside CPython (bench/hyperfine.sh,
#                   results in bench/results/)
#   make bench-scale  time and peak memory from 10^3 to 10^7 tasks (bench/scale.sh),
#                   the figure plots/out/scale.png; about two minutes
#   make compare    every scenario beside its CPython twin (poolbench compare,
#                   defaults, --repeat 3, interleaved; QUICK=1: --quick, for
#                   tests): JSON and CSV into bench/results/compare/, the figure
#                   plots/out/compare.png, then docs/reproduction.md regenerated
#                   from those results (bench/compare.sh)
#   make chaos      fault injection (tests/chaos/run.sh): SIGKILL/SIGSTOP of
#                   workers and the fork server under load, SIGINT/SIGTERM to
#                   poolbench, mutated scenarios, hanging tasks; a few minutes
#   make chaos-quick  the same, short (under 30 s), as make test will run it,
#                   once per transport (socket, shm)
#   make test-shm   make test with every pool on the shared-memory transport
#                   (POOLBENCH_TRANSPORT=shm; any target honours that variable)
#   make mpi-check  poolbench on an MPI job on this machine (tests/mpi/, issue 15):
#                   P1, P3, P6, P7 over shared memory and TCP, 3-5 ranks;
#                   make check runs its quick part (docs/mpi.md)
#   make clean
#
# Objects go to $(BUILD) (build/ by default); the sanitizer targets re-run
# this Makefile with another BUILD directory and extra flags, so every
# variant is built from the same rules.

# Debian packages the project needs. pkg-config finds the libraries' flags.
# jq parses poolbench's JSON back in the command-line tests (tests/harness/test_cli.sh)
# and turns it into the figures' data (plots/data.sh); gnuplot-nox draws the
# figures (PNG through cairo, and SVG) without X.
DEB_PKGS := gcc make pkg-config libmsgpack-dev liblua5.4-dev libjansson-dev \
            libcmocka-dev valgrind jq gnuplot-nox hyperfine openmpi-bin libopenmpi-dev
PKG_LIBS := msgpack lua5.4 jansson

BUILD   ?= build
SAN     ?=
CC      ?= cc
OPT     ?= -O2
# Every folder with headers is on the include path: the engine's (pool.h),
# the strategies' (strategy.h), the harness's, and the tests' shared helpers.
CFLAGS  := -std=c11 -Wall -Wextra -Werror $(OPT) -g -D_GNU_SOURCE \
           -Iimpls/engine -Iimpls -Ibench/harness -Itests $(SAN)
# Deferred (=): evaluated only once deps has installed pkg-config's files.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKG_LIBS))
PKG_LDLIBS = $(shell pkg-config --libs $(PKG_LIBS))
LDLIBS  = $(PKG_LDLIBS) -lpthread -lm

# Open MPI (issue 15, docs/mpi.md): mpicc tells its flags. The MPI transport
# and the worker ranks' side (MPI_SRC) go into their own archive, linked only
# into the poolbench command: the engine's tests and other clients never
# load libmpi. poolbench merely linked with it starts ~1 ms slower and never
# calls MPI unless run with --transport mpi (MPI_Init only then). Without
# mpicc the command is built without MPI and says so when asked for it.
MPI_CFLAGS  = $(shell mpicc --showme:compile 2>/dev/null)
MPI_LDLIBS  = $(shell mpicc --showme:link 2>/dev/null)
MPI_SRC     := impls/engine/pool_mpi.c impls/engine/pool_transport_mpi.c bench/harness/run_mpi.c
LIBMPI      := $(BUILD)/libpoolmpi.a
HAVE_MPI    = $(if $(MPI_LDLIBS),1,)

# Three libraries, one per folder, each depending only on the ones after it:
# the harness (bench/harness/, the poolbench command less its main) ->
# the strategies (impls/*.c) -> the engine (impls/engine/).
ENGINE_SRC  := $(filter-out $(MPI_SRC),$(wildcard impls/engine/*.c))
LIBPOOL     := $(BUILD)/libpool.a
STRAT_SRC   := $(wildcard impls/*.c)
LIBSTRAT    := $(BUILD)/libstrat.a
HARNESS_SRC := $(filter-out bench/harness/poolbench.c $(MPI_SRC),$(wildcard bench/harness/*.c))
LIBBENCH    := $(BUILD)/libbench.a
POOLBENCH   := $(BUILD)/poolbench
obj = $(patsubst %.c,$(BUILD)/%.o,$(1))

# The cmocka tests, grouped like the code (tests/engine, tests/strategies,
# tests/harness); each binary is named after its file.
TEST_SRC   := $(wildcard tests/*/test_*.c)
TEST_BIN   := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
BENCH_BIN  := $(BUILD)/overhead
STARTUP_BIN := $(BUILD)/startup

.PHONY: all build deps test check mpi-check sanitize tsan valgrind valgrind-quick run plots figures docs-img bench bench-scale compare chaos \
        chaos-quick test-shm clean
# Keep every object, including the Lua glue that only tests link: make would
# otherwise delete it as an intermediate file and rebuild it next time.
.SECONDARY:

all: deps
	@$(MAKE) --no-print-directory build

build: $(LIBPOOL) $(POOLBENCH) $(TEST_BIN) $(BENCH_BIN) $(STARTUP_BIN)

# Installs the missing packages. dpkg-query tells what is installed; as root
# we install, otherwise we print the one command a user must run.
deps:
	@missing=""; \
	for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "deps: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "deps: missing Debian packages:$$missing"; \
	    echo "deps: run: sudo apt-get update && sudo apt-get install -y$$missing"; \
	    exit 1; \
	  fi; \
	fi

# One rule builds every object. A change to any header rebuilds everything:
# with ~40 files that costs seconds and never leaves a stale object.
HEADERS := $(wildcard impls/engine/*.h impls/*.h bench/harness/*.h tests/*.h)
$(BUILD)/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(LIBPOOL): $(call obj,$(ENGINE_SRC))
	rm -f $@
	ar rcs $@ $^

$(LIBSTRAT): $(call obj,$(STRAT_SRC))
	rm -f $@
	ar rcs $@ $^

$(LIBBENCH): $(call obj,$(HARNESS_SRC))
	rm -f $@
	ar rcs $@ $^

$(call obj,$(MPI_SRC)): $(BUILD)/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(MPI_CFLAGS) -c $< -o $@

$(LIBMPI): $(call obj,$(MPI_SRC))
	rm -f $@
	ar rcs $@ $^

# poolbench.c knows MPI only as POOLBENCH_MPI says (run_mpi.h's calls).
$(BUILD)/bench/harness/poolbench.o: bench/harness/poolbench.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(if $(HAVE_MPI),-DPOOLBENCH_MPI) -c $< -o $@

# Libraries in dependency order (harness -> strategies -> engine): an
# archive only supplies what the objects before it still need.
$(POOLBENCH): $(BUILD)/bench/harness/poolbench.o $(if $(HAVE_MPI),$(LIBMPI)) $(LIBBENCH) \
              $(LIBSTRAT) $(LIBPOOL)
	$(CC) $(CFLAGS) $^ $(LDLIBS) $(if $(HAVE_MPI),$(MPI_LDLIBS)) -o $@

# Every test binary links the harness, the strategies and the engine; the
# linker keeps only what a test uses (the engine tests need no strategy).
$(BUILD)/tests/%: tests/%.c $(HEADERS) $(LIBBENCH) $(LIBSTRAT) $(LIBPOOL)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $< $(LIBBENCH) $(LIBSTRAT) $(LIBPOOL) $(LDLIBS) -lcmocka -o $@

$(BENCH_BIN): bench/overhead.c $(LIBPOOL)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $< $(LIBPOOL) $(LDLIBS) -o $@

$(STARTUP_BIN): bench/startup.c $(LIBPOOL)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $< $(LIBPOOL) $(LDLIBS) -o $@

# Each case in its own process (tests/run_cases.sh), so a crash cannot take
# the runner down; the script ends with "N passed, N failed". Then the quick
# fault injection (make chaos-quick, under 30 s) and the engine's cases under
# valgrind (make valgrind-quick, about 2 minutes): not part of check, so that
# the sanitizer builds do not run them under their own slower timings.
test: deps
	@rc=0; $(MAKE) --no-print-directory check || rc=1; \
	$(MAKE) --no-print-directory chaos-quick || rc=1; \
	$(MAKE) --no-print-directory valgrind-quick || rc=1; exit $$rc

# Every pool runs on the transport POOLBENCH_TRANSPORT names (socket when
# unset; impls/engine/pool_transport.h); the engine's and the strategies'
# cmocka suites then run a second time on the other one, so that both
# transports pass every case in every make check (about 16 s more).
OTHER_TRANSPORT = $(if $(filter shm,$(POOLBENCH_TRANSPORT)),socket,shm)
TRANSPORT_TESTS = $(filter $(BUILD)/tests/engine/% $(BUILD)/tests/strategies/%,$(TEST_BIN))

# The cmocka cases first, then the command-line tests, the labs' (every lab
# renders, every command docs/labs/ gives runs) and the plot pipeline's
# quick run (data.sh QUICK=1, then every gnuplot script), which
# run the poolbench binary of this build (so `make sanitize` tests the ASan
# one). All always run, so that one failing suite does not hide another.
check: build
	@rc=0; tests/run_cases.sh $(TEST_BIN) || rc=1; \
	echo "== the engine and strategy suites again, on the $(OTHER_TRANSPORT) transport"; \
	POOLBENCH_TRANSPORT=$(OTHER_TRANSPORT) tests/run_cases.sh $(TRANSPORT_TESTS) || rc=1; \
	tests/harness/test_cli.sh $(POOLBENCH) || rc=1; \
	tests/harness/test_scale.sh $(POOLBENCH) || rc=1; \
	tests/harness/test_labs.sh $(POOLBENCH) || rc=1; \
	tests/harness/test_compare.sh $(POOLBENCH) || rc=1; \
	tests/plots/test_plots.sh $(POOLBENCH) || rc=1; \
	POOLBENCH=$(POOLBENCH) tests/bench/test_bench_scripts.sh || rc=1; \
	tests/mpi/test_mpi.sh $(POOLBENCH) || rc=1; exit $$rc

# The MPI transport on this machine, whole (tests/mpi/test_mpi.sh --full):
# the checks of P1, P3, P6 and P7 over shared memory and over TCP loopback,
# 3 to 5 ranks; about a minute. make check runs its quick part.
mpi-check: $(POOLBENCH)
	tests/mpi/test_mpi.sh --full $(POOLBENCH)

# Under a sanitizer, timings and memory are not the program's own, so the
# scenarios' phenomenon checks may fail (SANITIZED tells the test scripts to
# accept that); what must not happen is a sanitizer report, which exits 99.
sanitize: deps
	@SANITIZED=1 ASAN_OPTIONS=exitcode=99 UBSAN_OPTIONS=halt_on_error=1 \
	  $(MAKE) --no-print-directory check BUILD=build/asan OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"

tsan: deps
	@SANITIZED=1 TSAN_OPTIONS="exitcode=99 halt_on_error=1" \
	  $(MAKE) --no-print-directory check BUILD=build/tsan OPT=-O1 SAN="-fsanitize=thread"

# valgrind follows the test process only: workers are forked children that
# _exit() without freeing, which is not a leak of the pool's.
VALGRIND_CMD = valgrind -q --leak-check=full --errors-for-leak-kinds=definite \
               --error-exitcode=99 --child-silent-after-fork=yes
valgrind: deps
	@$(MAKE) --no-print-directory build
	VALGRIND="$(VALGRIND_CMD)" \
	  tests/run_cases.sh $(filter $(BUILD)/tests/engine/% $(BUILD)/tests/strategies/% $(BUILD)/tests/harness/test_scenario,$(TEST_BIN))

# The engine's cmocka cases alone under valgrind (about 2 minutes), part of
# make test: valgrind's own kernel interface differs from the machine's (it
# had no pidfd_open, and 11 start cases failed there unseen while make
# valgrind, which adds the strategies and the scenario loader, about 3
# minutes, was not in CI).
valgrind-quick: build
	@echo "== the engine's cases under valgrind"
	@VALGRIND="$(VALGRIND_CMD)" tests/run_cases.sh $(filter $(BUILD)/tests/engine/%,$(TEST_BIN))

# The main job is `make plots`: every scenario runs once, so `make run`
# does not run them a second time for the figures.
run: plots

# plots/data.sh runs every scenario once with its defaults (--repeat 5),
# printing each table as it goes and keeping its JSON, CSV and trace, plus
# the two sweeps (chunksize, n) the figures need; plots/draw.sh then runs
# every plots/*.gp into plots/out/. A scenario whose checks fail still gets
# its figures; the target fails at the end if any did. The main job writes
# only into plots/out/ (ignored by git): running it leaves the tree clean.
plots: all
	@rc=0; POOLBENCH=$(POOLBENCH) plots/data.sh || rc=1; \
	plots/draw.sh || rc=1; exit $$rc

# Redraws from plots/out/data/ without running anything (after editing a .gp).
figures:
	plots/draw.sh

# The docs show copies of the figures; refreshing them is a deliberate step
# (after make plots on a quiet machine), not a side effect of the main job.
docs-img:
	@ls plots/out/*.png > /dev/null 2>&1 || { echo "docs-img: no figures in plots/out/: run make plots first" >&2; exit 1; }
	cp plots/out/*.png docs/img/
	@echo "docs-img: $$(ls plots/out/*.png | wc -l) figures copied into docs/img/"

bench: all
	$(BENCH_BIN)
	$(STARTUP_BIN)
	POOLBENCH=$(POOLBENCH) bench/mpi_overhead.sh
	POOLBENCH=$(POOLBENCH) bench/hyperfine.sh

# Time and the parent's peak memory from 10^3 to 10^7 trivial tasks (issue
# 14: flat memory, linear time): bench/scale.sh into bench/results/scale/,
# then the log-log figure plots/out/scale.png (plots/scale.gp). About two
# minutes on 2 cores; make plots draws the same figure to 10^5 only.
bench-scale: all
	POOLBENCH=$(POOLBENCH) bench/scale.sh --max 10000000 --out bench/results/scale
	@mkdir -p plots/out
	gnuplot -e "datadir='bench/results/scale'; outdir='plots/out'" plots/scale.gp
	@echo "bench-scale: plots/out/scale.png, data in bench/results/scale/"

# Runs `poolbench compare` on every scenario: each strategy on poolbench and
# on the scenario's CPython twin (bench/python/NAME.py), interleaved, both
# judged by the scenario's checks; writes bench/results/compare/ (JSON, CSV,
# the output; ignored by git), draws plots/out/compare.png (plots/compare.gp),
# then regenerates docs/reproduction.md from those results
# (bench/reproduction.py). QUICK=1: --quick --repeat 1, seconds, for tests.
compare: all
	POOLBENCH=$(POOLBENCH) QUICK=$(QUICK) bench/compare.sh

# Fault injection (tests/chaos/run.sh). Its C driver is built by the test
# rule above ($(BUILD)/tests/%), outside TEST_BIN: it is no cmocka binary.
# CHAOS_SEED fixes every random choice; each failure prints its command.
CHAOS_ENGINE := $(BUILD)/tests/chaos/chaos_engine
chaos: $(POOLBENCH) $(CHAOS_ENGINE)
	POOLBENCH=$(POOLBENCH) CHAOS_ENGINE=$(CHAOS_ENGINE) tests/chaos/run.sh

chaos-quick: $(POOLBENCH) $(CHAOS_ENGINE)
	@rc=0; POOLBENCH=$(POOLBENCH) CHAOS_ENGINE=$(CHAOS_ENGINE) tests/chaos/run.sh --quick || rc=1; \
	POOLBENCH_TRANSPORT=$(OTHER_TRANSPORT) POOLBENCH=$(POOLBENCH) CHAOS_ENGINE=$(CHAOS_ENGINE) \
	  tests/chaos/run.sh --quick || rc=1; exit $$rc

# The whole of make test with the shared-memory transport as every pool's
# default (the engine and strategy suites and chaos-quick still run a second
# time, then on the socket).
test-shm:
	@POOLBENCH_TRANSPORT=shm $(MAKE) --no-print-directory test

clean:
	rm -rf build
