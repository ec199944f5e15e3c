# poolbench's Makefile.
#
#   make            install missing Debian packages (see deps), build everything
#   make deps       install what is missing: as root with apt-get, otherwise
#                   print the exact command to run
#   make test       build, then run every test, each case in its own process
#   make sanitize   the tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make tsan       the tests under ThreadSanitizer
#   make valgrind   the engine tests under valgrind (leaks, bad reads)
#   make run        the main job: build, run every scenarios/*.lua once with its
#                   defaults (printing each table), then draw every figure
#   make plots      the same runs and figures: plots/out/*.png and *.svg,
#                   PNG copies in docs/img/ (plots/data.sh, then plots/draw.sh)
#   make figures    only redraw the figures from the data of the last make plots
#   make bench      the benchmarks (figures, not pass/fail): the engine's
#                   overhead (bench/overhead), then every scenario x strategy
#                   timed by hyperfine beside CPython (bench/hyperfine.sh,
#                   results in bench/results/)
#   make clean
#
# Objects go to $(BUILD) (build/ by default); the sanitizer targets re-run
# this Makefile with another BUILD directory and extra flags, so every
# variant is built from the same rules.

# Debian packages the project needs. pkg-config finds the libraries' flags.
# jq parses poolbench's JSON back in the command-line tests (tests/test_cli.sh)
# and turns it into the figures' data (plots/data.sh); gnuplot-nox draws the
# figures (PNG through cairo, and SVG) without X.
DEB_PKGS := gcc make pkg-config libmsgpack-dev liblua5.4-dev libjansson-dev \
            libcmocka-dev valgrind jq gnuplot-nox hyperfine
PKG_LIBS := msgpack lua5.4 jansson

BUILD   ?= build
SAN     ?=
CC      ?= cc
OPT     ?= -O2
CFLAGS  := -std=c11 -Wall -Wextra -Werror $(OPT) -g -D_GNU_SOURCE -Iimpls -Ibench $(SAN)
# Deferred (=): evaluated only once deps has installed pkg-config's files.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKG_LIBS))
PKG_LDLIBS = $(shell pkg-config --libs $(PKG_LIBS))
LDLIBS  = $(PKG_LDLIBS) -lpthread -lm

# The engine is one library; the strategies, its clients, are another.
ENGINE_SRC := $(wildcard impls/pool_*.c)
ENGINE_OBJ := $(patsubst impls/%.c,$(BUILD)/impls/%.o,$(ENGINE_SRC))
LIBPOOL    := $(BUILD)/libpool.a
STRAT_SRC  := impls/strategy.c $(wildcard impls/strat_*.c)
STRAT_OBJ  := $(patsubst impls/%.c,$(BUILD)/impls/%.o,$(STRAT_SRC))
LIBSTRAT   := $(BUILD)/libstrat.a
# The harness: the Lua value glue, scenario loading, the runner and the
# reporters, one library shared by the poolbench command and the tests.
HARNESS_SRC := bench/lua_values.c bench/scenario.c bench/scenario_schema.c \
               bench/scenario_eval.c bench/runner.c bench/runner_checks.c bench/report.c \
               bench/lab_table.c bench/lab.c
HARNESS_OBJ := $(patsubst bench/%.c,$(BUILD)/bench/%.o,$(HARNESS_SRC))
LIBBENCH    := $(BUILD)/libbench.a
POOLBENCH   := $(BUILD)/poolbench

TEST_SRC   := $(wildcard tests/test_*.c)
TEST_BIN   := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
BENCH_BIN  := $(BUILD)/overhead

.PHONY: all build deps test check sanitize tsan valgrind run plots figures bench clean
# Keep every object, including the Lua glue that only tests link: make would
# otherwise delete it as an intermediate file and rebuild it next time.
.SECONDARY:

all: deps
	@$(MAKE) --no-print-directory build

build: $(LIBPOOL) $(POOLBENCH) $(TEST_BIN) $(BENCH_BIN)

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

$(BUILD)/impls/%.o: impls/%.c impls/pool.h impls/pool_internal.h impls/strategy.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(BUILD)/bench/%.o: bench/%.c $(wildcard bench/*.h) impls/pool.h impls/strategy.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(LIBPOOL): $(ENGINE_OBJ)
	rm -f $@
	ar rcs $@ $^

$(LIBSTRAT): $(STRAT_OBJ)
	rm -f $@
	ar rcs $@ $^

$(LIBBENCH): $(HARNESS_OBJ)
	rm -f $@
	ar rcs $@ $^

# Libraries in dependency order (harness -> strategies -> engine): an
# archive only supplies what the objects before it still need.
$(POOLBENCH): $(BUILD)/bench/poolbench.o $(LIBBENCH) $(LIBSTRAT) $(LIBPOOL)
	$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

# Every test binary links the harness, the strategies and the engine; the
# linker keeps only what a test uses (the engine tests need no strategy).
$(BUILD)/tests/%: tests/%.c $(wildcard tests/*.h) $(LIBBENCH) $(LIBSTRAT) $(LIBPOOL)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $< $(LIBBENCH) $(LIBSTRAT) $(LIBPOOL) $(LDLIBS) -lcmocka -o $@

$(BENCH_BIN): bench/overhead.c $(LIBPOOL)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $< $(LIBPOOL) $(LDLIBS) -o $@

# Each case in its own process (tests/run_cases.sh), so a crash cannot take
# the runner down; the script ends with "N passed, N failed".
test: deps
	@$(MAKE) --no-print-directory check

# The cmocka cases first, then the command-line tests, the labs' (every lab
# renders, every command docs/labs/ gives runs) and the plot pipeline's
# quick run (data.sh QUICK=1, then every gnuplot script), which
# run the poolbench binary of this build (so `make sanitize` tests the ASan
# one). All always run, so that one failing suite does not hide another.
check: build
	@rc=0; tests/run_cases.sh $(TEST_BIN) || rc=1; \
	tests/test_cli.sh $(POOLBENCH) || rc=1; \
	tests/test_labs.sh $(POOLBENCH) || rc=1; \
	tests/test_plots.sh $(POOLBENCH) || rc=1; \
	POOLBENCH=$(POOLBENCH) tests/test_bench_scripts.sh || rc=1; exit $$rc

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
valgrind: deps
	@$(MAKE) --no-print-directory build
	VALGRIND="valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 --child-silent-after-fork=yes" \
	  tests/run_cases.sh $(filter $(BUILD)/tests/test_pool_% $(BUILD)/tests/test_strat_% $(BUILD)/tests/test_scenario,$(TEST_BIN))

# The main job is `make plots`: every scenario runs once, so `make run`
# does not run them a second time for the figures.
run: plots

# plots/data.sh runs every scenario once with its defaults (--repeat 5),
# printing each table as it goes and keeping its JSON, CSV and trace, plus
# the two sweeps (chunksize, n) the figures need; plots/draw.sh then runs
# every plots/*.gp and copies the PNGs into docs/img/. A scenario whose
# checks fail still gets its figures; the target fails at the end if any did.
plots: all
	@rc=0; POOLBENCH=$(POOLBENCH) plots/data.sh || rc=1; \
	plots/draw.sh --copy docs/img || rc=1; exit $$rc

# Redraws from plots/out/data/ without running anything (after editing a .gp).
figures:
	plots/draw.sh --copy docs/img

bench: all
	$(BENCH_BIN)
	POOLBENCH=$(POOLBENCH) bench/hyperfine.sh

clean:
	rm -rf build
