# kernels/cuda.mk — CUDA backend archive and the CUDA op test program.
#
# Include it from the main Makefile AFTER the "CUDA backend" section (it uses
# NVCC, CUDA_GENCODE, CU_OBJS, BUILD, LDFLAGS, LDLIBS from there):
#     -include kernels/cuda.mk
# or use it without editing the Makefile:
#     make -f Makefile -f kernels/cuda.mk cuda-test CUDA_ARCH=80
#
#   cuda-lib   $(BUILD)/cuda/libmiles_cuda.a  (every kernels/*.cu object)
#   cuda-test  $(BUILD)/cuda/test_cuda_ops    (tests/cuda/test_cuda_ops.cu, linked
#              with libmiles_cuda.a, the CPU $(BUILD)/libmiles.a, cuBLAS(Lt), cudart)
#              $(BUILD)/cuda/test_cuda_fast   (tests/cuda/test_cuda_fast.cu: the 16-bit
#              path's kernels vs the CPU)
#              $(BUILD)/cuda/test_cuda_model  (tests/cuda/test_cuda_model.cu: the GPU
#              model vs the CPU model and the golden fixtures)
#              $(BUILD)/cuda/bench_cuda_model (bench/bench_cuda_model.cu)
#              (`make cuda` builds cuda-test: every program here is compile-checked)
#   cuda-run-test  build and run the three tests (the GPU ones exit 0 with "no CUDA
#              device" on a CPU box)
#   cuda-emu-test  $(BUILD)/cuda/test_cuda_model_emu: kernels/model_cuda.cu compiled by
#              the HOST compiler with -DMILES_CUDA_HOST_EMULATION (kernels/cuda_emu.h),
#              the *_cuda ops replaced by the CPU ops: the GPU driver's logic checked
#              bitwise against the CPU model, no GPU and no nvcc needed; and
#              $(BUILD)/cuda/test_cuda_model_hostemu: test_cuda_model.cu on the same
#              emulation (the GPU test's own logic); both built and run

CXX       ?= g++
CUDA_HOME ?= $(patsubst %/bin/,%,$(dir $(shell command -v $(NVCC) 2>/dev/null)))
CUDA_LIBDIR ?= $(firstword $(wildcard $(CUDA_HOME)/lib64 $(CUDA_HOME)/lib $(CUDA_HOME)/targets/x86_64-linux/lib))
CUDA_LIBS  = -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) -lcublasLt -lcublas -lcudart

.PHONY: cuda-lib cuda-test cuda-run-test cuda-emu-test cuda-backend backend-sim-test dp-sim-test

# ---- the CUDA backend as a shared object (libmiles/backend_internal.h):
# kernels/backend_cuda.cpp + every kernel + the libmiles internals it needs
# (from libmiles.a, hidden by --exclude-libs), exporting only
# miles_backend_cuda_entry (backend_cuda.map).  libmiles dlopens it.
CUDA_INC  = $(firstword $(wildcard $(CUDA_HOME)/include $(CUDA_HOME)/targets/x86_64-linux/include))
BACKEND_SO_FLAGS = -shared -Wl,--exclude-libs,ALL -Wl,--version-script=kernels/backend_cuda.map -Wl,-z,defs
$(BUILD)/cuda/backend_cuda.o: kernels/backend_cuda.cpp kernels/model_cuda.h libmiles/backend_internal.h libmiles/miles.h
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 -O2 -fPIC -Wall -Wextra -I$(CUDA_INC) -Ilibmiles -Ikernels -c $< -o $@
# (NCCL is dlopened by dist_nccl.o at run time: not linked)
$(BUILD)/libmiles_cuda.so: $(BUILD)/cuda/backend_cuda.o $(CU_OBJS) $(BUILD)/libmiles.a kernels/backend_cuda.map
	$(CXX) $(BACKEND_SO_FLAGS) $(filter %.o %.a,$^) -o $@ $(LDFLAGS) $(CUDA_LIBS) $(LDLIBS) -ldl
cuda-backend: $(BUILD)/libmiles_cuda.so

$(BUILD)/cuda/libmiles_cuda.a: $(CU_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

cuda-lib: $(BUILD)/cuda/libmiles_cuda.a

$(BUILD)/cuda-test/test_cuda_ops.o: tests/cuda/test_cuda_ops.cu tests/cuda/op_test.h kernels/*.cuh kernels/*.h libmiles/*.h
	@mkdir -p $(dir $@)
	$(NVCC) -O2 -std=c++17 $(CUDA_GENCODE) -Ilibmiles -Ikernels -Itests/cuda -c $< -o $@

# linked by the host C++ compiler (no relocatable device code is used);
# LDFLAGS carries -fopenmp for the CPU library
$(BUILD)/cuda/test_cuda_ops: $(BUILD)/cuda-test/test_cuda_ops.o $(BUILD)/cuda/libmiles_cuda.a $(BUILD)/libmiles.a
	@mkdir -p $(dir $@)
	$(CXX) $^ -o $@ $(LDFLAGS) $(CUDA_LIBS) $(LDLIBS)

# the model test and the model benchmark: same recipe
$(BUILD)/cuda-test/test_cuda_model.o: tests/cuda/test_cuda_model.cu tests/golden_config.h tests/cuda/model_fixture.h kernels/*.cuh kernels/*.h libmiles/*.h
	@mkdir -p $(dir $@)
	$(NVCC) -O2 -std=c++17 $(CUDA_GENCODE) -Ilibmiles -Ikernels -c $< -o $@

$(BUILD)/cuda-test/bench_cuda_model.o: bench/bench_cuda_model.cu tests/cuda/model_fixture.h kernels/*.cuh kernels/*.h libmiles/*.h
	@mkdir -p $(dir $@)
	$(NVCC) -O2 -std=c++17 $(CUDA_GENCODE) -Ilibmiles -Ikernels -c $< -o $@

$(BUILD)/cuda-test/test_cuda_fast.o: tests/cuda/test_cuda_fast.cu tests/cuda/op_test.h kernels/*.cuh kernels/*.h libmiles/*.h
	@mkdir -p $(dir $@)
	$(NVCC) -O2 -std=c++17 $(CUDA_GENCODE) -Ilibmiles -Ikernels -Itests/cuda -c $< -o $@

$(BUILD)/cuda/test_cuda_fast: $(BUILD)/cuda-test/test_cuda_fast.o $(BUILD)/cuda/libmiles_cuda.a $(BUILD)/libmiles.a
	@mkdir -p $(dir $@)
	$(CXX) $^ -o $@ $(LDFLAGS) $(CUDA_LIBS) $(LDLIBS)

$(BUILD)/cuda/test_cuda_model: $(BUILD)/cuda-test/test_cuda_model.o $(BUILD)/cuda/libmiles_cuda.a $(BUILD)/libmiles.a
	@mkdir -p $(dir $@)
	$(CXX) $^ -o $@ $(LDFLAGS) $(CUDA_LIBS) $(LDLIBS)

$(BUILD)/cuda/bench_cuda_model: $(BUILD)/cuda-test/bench_cuda_model.o $(BUILD)/cuda/libmiles_cuda.a $(BUILD)/libmiles.a
	@mkdir -p $(dir $@)
	$(CXX) $^ -o $@ $(LDFLAGS) $(CUDA_LIBS) $(LDLIBS)

# host emulation of the model driver (g++ only; links no CUDA library)
EMU_CXXFLAGS = -std=c++17 -O2 -g -Wall -Wextra -Wno-unused-parameter -DMILES_CUDA_HOST_EMULATION \
               -Ilibmiles -Ikernels -Itests/cuda $(filter -fopenmp,$(CFLAGS)) $(filter -fsanitize=%,$(OPTFLAGS))
EMU_SRCS = kernels/model_cuda.cu kernels/model_cuda_state.cu
EMU_OBJS = $(EMU_SRCS:kernels/%.cu=$(BUILD)/cuda-emu/%.o)
$(BUILD)/cuda-emu/%.o: kernels/%.cu kernels/model_cuda.h kernels/model_cuda_internal.h kernels/cuda_emu.h kernels/cuda_ops.h libmiles/*.h
	@mkdir -p $(dir $@)
	$(CXX) $(EMU_CXXFLAGS) -x c++ -c $< -o $@

$(BUILD)/cuda-emu/test_cuda_model_emu.o: tests/cuda/test_cuda_model_emu.cpp tests/golden_config.h tests/cuda/model_fixture.h kernels/model_cuda.h kernels/cuda_emu.h kernels/cuda_ops.h libmiles/*.h
	@mkdir -p $(dir $@)
	$(CXX) $(EMU_CXXFLAGS) -c $< -o $@

$(BUILD)/cuda-emu/cuda_emu_ops.o: tests/cuda/cuda_emu_ops.cpp kernels/cuda_emu.h kernels/cuda_ops.h libmiles/*.h
	@mkdir -p $(dir $@)
	$(CXX) $(EMU_CXXFLAGS) -c $< -o $@

$(BUILD)/cuda-emu/test_cuda_model.o: tests/cuda/test_cuda_model.cu tests/golden_config.h tests/cuda/model_fixture.h kernels/model_cuda.h kernels/cuda_emu.h kernels/cuda_ops.h libmiles/*.h
	@mkdir -p $(dir $@)
	$(CXX) $(EMU_CXXFLAGS) -x c++ -c $< -o $@

$(BUILD)/cuda/test_cuda_model_emu: $(BUILD)/cuda-emu/test_cuda_model_emu.o $(BUILD)/cuda-emu/cuda_emu_ops.o $(EMU_OBJS) $(BUILD)/libmiles.a
	@mkdir -p $(dir $@)
	$(CXX) $^ -o $@ $(LDFLAGS) $(LDLIBS)

# tests/cuda/test_cuda_model.cu itself, on the emulated kernels
$(BUILD)/cuda/test_cuda_model_hostemu: $(BUILD)/cuda-emu/test_cuda_model.o $(BUILD)/cuda-emu/cuda_emu_ops.o $(EMU_OBJS) $(BUILD)/libmiles.a
	@mkdir -p $(dir $@)
	$(CXX) $^ -o $@ $(LDFLAGS) $(LDLIBS)

cuda-emu-test: $(BUILD)/cuda/test_cuda_model_emu $(BUILD)/cuda/test_cuda_model_hostemu
	$(BUILD)/cuda/test_cuda_model_emu
	$(BUILD)/cuda/test_cuda_model_hostemu

cuda-test: $(BUILD)/cuda/test_cuda_ops $(BUILD)/cuda/test_cuda_fast $(BUILD)/cuda/test_cuda_model $(BUILD)/cuda/bench_cuda_model \
           $(BUILD)/cuda/test_cuda_model_emu $(BUILD)/cuda/test_cuda_model_hostemu

cuda-run-test: $(BUILD)/cuda/test_cuda_ops $(BUILD)/cuda/test_cuda_fast $(BUILD)/cuda/test_cuda_model $(BUILD)/cuda/test_cuda_model_emu
	$(BUILD)/cuda/test_cuda_ops
	$(BUILD)/cuda/test_cuda_fast
	$(BUILD)/cuda/test_cuda_model
	$(BUILD)/cuda/test_cuda_model_emu

# NCCL all-reduce wrapper test (compile + link here; run with mpirun -np <GPUs> on a GPU node)
$(BUILD)/cuda-test/test_dist_nccl.o: tests/cuda/test_dist_nccl.cu kernels/dist_nccl.h kernels/model_cuda.h libmiles/miles.h
	@mkdir -p $(dir $@)
	$(NVCC) -O2 -std=c++17 $(CUDA_GENCODE) $(MPI_USER_CFLAGS) -Ilibmiles -Ikernels -c $< -o $@
# MPI comes from libmiles-mpi (libmiles has none)
$(BUILD)/cuda/test_dist_nccl: $(BUILD)/cuda-test/test_dist_nccl.o $(BUILD)/cuda/libmiles_cuda.a $(filter %.a,$(MPI_LIBS_BUILT)) $(BUILD)/libmiles.a
	@mkdir -p $(dir $@)
	$(CXX) $^ -o $@ $(LDFLAGS) $(CUDA_LIBS) $(MPI_LIBS) $(LDLIBS) -ldl
cuda-test: $(BUILD)/cuda/test_dist_nccl

# ---- V100 (sm_70): CUDA 13 dropped it, so its device code is built with CUDA 12.
# PyPI's CUDA 12 nvcc wheel (nvidia-cuda-nvcc-cu12) brings ptxas, libdevice and the
# crt headers but neither the nvcc driver nor its front end (cicc), and Debian has
# no CUDA 12 toolkit.  So clang (Debian's clang-19, a CUDA compiler of its own)
# compiles every kernel, test and benchmark .cu file for sm_70 against CUDA 12.9's
# headers and libdevice, and CUDA 12.9's ptxas assembles the sm_70 machine code:
# what the V100 paths (__CUDA_ARCH__ 700: the portable MMA, fp16 without bf16)
# really are.  The host side too (clang --cuda-host-only: the code without __CUDA_ARCH__,
# host-only template instantiations) and kernels/backend_cuda.cpp, against the same
# headers: the runtime, cuBLAS(Lt) and cuRAND calls of a CUDA 12 build, compile-checked,
# not linked (CUDA 13 added and changed some: a planted cudaLogsCurrent, CUDA 13 only,
# fails here while `make cuda` takes it).  The wheels are pinned and unpacked into
# $(CU12_DIR) (ignored by git; pip's cache keeps the downloads); nccl.h is the system's
# (the NCCL API is the same on CUDA 12).
# The check fails on any warning, and if any header came from the CUDA 13 install
# (its headers sit in /usr/local/include, ahead of clang's CUDA path).
CU12_DIR    ?= .cu12
CU12_WHEELS  = nvidia-cuda-nvcc-cu12==12.9.86 nvidia-cuda-runtime-cu12==12.9.79 nvidia-cuda-cccl-cu12==12.9.27 \
               nvidia-curand-cu12==10.3.10.19 nvidia-cublas-cu12==12.9.3.13
CLANG_CUDA  ?= clang++-19
SM70_DIR     = $(BUILD)/cuda-sm70
# one .cubin (device side) and one .host.o (host side) per .cu, at the source's path under $(SM70_DIR)
SM70_SRCS    = $(CU_SRCS) $(wildcard tests/cuda/*.cu) $(wildcard bench/*.cu)
SM70_CUBINS  = $(patsubst %.cu,$(SM70_DIR)/%.cubin,$(SM70_SRCS))
SM70_HOSTS   = $(patsubst %.cu,$(SM70_DIR)/%.host.o,$(SM70_SRCS)) $(SM70_DIR)/kernels/backend_cuda.host.o
SM70_OUT     = $(SM70_CUBINS) $(SM70_HOSTS)
SM70_COMMON  = -isystem $(abspath $(CU12_DIR))/include -std=c++17 -Wall -Wextra \
               -Wno-unused-parameter -Wno-unknown-cuda-version -Werror -Ilibmiles -Ikernels -Itests/cuda $(MPI_USER_CFLAGS) -MD
# Device side without clang's own loop unrolling (-fno-unroll-loops; `#pragma unroll`
# loops still unroll): the cubins are a compile check, never run (nvcc 12 builds the
# V100 binary), and every kernel still goes through CUDA 12's ptxas for sm_70.  With
# clang's unrolling flash_attn.cu's 14 kernels came to 224k lines of PTX and ptxas
# took ~77 s of the step's ~190 (2 cores), without it 154k lines and ~16 s.
SM70_FLAGS   = -x cuda --cuda-path=$(abspath $(CU12_DIR)) --cuda-gpu-arch=sm_70 --cuda-device-only -O3 -fno-unroll-loops $(SM70_COMMON)
# host side: a compile check, so no optimization
SM70_HOST_FLAGS = -x cuda --cuda-path=$(abspath $(CU12_DIR)) --cuda-gpu-arch=sm_70 --cuda-host-only -O0 $(SM70_COMMON)
.PHONY: cuda-sm70 cu12 sm70-clang
$(CU12_DIR)/version.json:
	rm -rf $(CU12_DIR).tmp && mkdir -p $(CU12_DIR).tmp/wheels
	$(PYTHON) -m pip download --no-deps --disable-pip-version-check -q -d $(CU12_DIR).tmp/wheels $(CU12_WHEELS)
	cd $(CU12_DIR).tmp && for w in wheels/*.whl; do unzip -q -o "$$w" 'nvidia/*' -x '*.so*' '*.a' '*/__init__.py' || exit 1; done
	mkdir -p $(CU12_DIR).tmp/include $(CU12_DIR).tmp/bin $(CU12_DIR).tmp/nvvm
	for d in $(CU12_DIR).tmp/nvidia/*/include; do cp -r "$$d"/. $(CU12_DIR).tmp/include/ || exit 1; done
	mv $(CU12_DIR).tmp/nvidia/cuda_nvcc/bin/ptxas $(CU12_DIR).tmp/bin/ && mv $(CU12_DIR).tmp/nvidia/cuda_nvcc/nvvm/libdevice $(CU12_DIR).tmp/nvvm/
	rm -rf $(CU12_DIR).tmp/nvidia $(CU12_DIR).tmp/wheels
	$(CU12_DIR).tmp/bin/ptxas --version | grep -q 'release 12\.9' || { echo "cu12: not CUDA 12.9's ptxas"; exit 1; }
	printf '{"cuda": {"name": "CUDA SDK", "version": "12.9.1"}}\n' > $(CU12_DIR).tmp/version.json
	rm -rf $(CU12_DIR) && mv $(CU12_DIR).tmp $(CU12_DIR)
cu12: $(CU12_DIR)/version.json
sm70-clang:
	@command -v $(CLANG_CUDA) >/dev/null 2>&1 || { echo "cuda-sm70: $(CLANG_CUDA) not found (make deps installs clang-19)"; exit 1; }
$(SM70_DIR)/%.cubin: %.cu $(CU12_DIR)/version.json | sm70-clang
	@mkdir -p $(dir $@)
	$(CLANG_CUDA) $(SM70_FLAGS) -c $< -o $@
$(SM70_DIR)/%.host.o: %.cu $(CU12_DIR)/version.json | sm70-clang
	@mkdir -p $(dir $@)
	$(CLANG_CUDA) $(SM70_HOST_FLAGS) -c $< -o $@
$(SM70_DIR)/kernels/backend_cuda.host.o: kernels/backend_cuda.cpp $(CU12_DIR)/version.json | sm70-clang
	@mkdir -p $(dir $@)
	$(CLANG_CUDA) -x c++ -O0 $(SM70_COMMON) -c $< -o $@
SM70_DEPS = $(SM70_CUBINS:.cubin=.d) $(SM70_HOSTS:.o=.d)
-include $(SM70_DEPS)
cuda-sm70: $(SM70_OUT)
	@bad=$$(cat $(SM70_DEPS) | tr ' ' '\n' | grep '^/usr/local/' | grep -v '/nccl\.h$$' | sort -u); \
	if [ -n "$$bad" ]; then echo "cuda-sm70: CUDA 13 headers used instead of CUDA 12's:"; echo "$$bad" | head; exit 1; fi
	@echo "cuda-sm70: $(words $(SM70_CUBINS)) files compiled for sm_70 (V100) by $(CLANG_CUDA) with CUDA 12.9's headers, libdevice and ptxas; their host sides and backend_cuda.cpp against the same headers"

# ---- SIMT emulator (tests/sim): the CUDA sources above, compiled by the host C++
# compiler against the emulator's CUDA headers and run on the CPU (no GPU, no nvcc).
# docs/gpu.md "SIMT emulator".  With SAN=1 (BUILD=build-asan) everything, emulator
# included, is built with AddressSanitizer + UBSan.
#
#   sim-test     build and run: test_simt (the emulator's own checks), test_simt_blas
#                (cuBLAS/cuBLASLt shim vs the CPU GEMM), tests/cuda/test_cuda_ops and
#                test_cuda_fast on the emulated device sm_90 and sm_70 (the portable MMA),
#                tests/cuda/test_cuda_model (its two halves side by side: --part 1 in
#                the background from the start, 2 after the others); the three again on a machine without a
#                device (SIMT_DEVICES=0: their host-only paths), the
#                NCCL all-reduce on 2 ranks (mpirun), then the per-kernel error table
#                (simt_coverage: fails if a __global__ kernel has no passing check)
#   sim-mutants  six deliberately broken kernel copies (tests/sim/mutants.sh, two at a time) must fail
#   sim-check    both, built with ASan + UBSan in build-asan (what `make check` runs)
#   SIM_OPS_ARGS / SIM_MODEL_ARGS: options for the two programs (default --quick)
SIM_DIR    = $(BUILD)/sim
ifeq ($(SAN),1)
  SIM_OPT  = -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
else
  SIM_OPT  = -O2
endif
SIM_ARCH  := $(if $(filter x86_64,$(shell uname -m)),-mfma)
# nvcc contracts a*b+c into FMA by default; so does the emulator build (-ffp-contract=fast + FMA)
SIM_CXXFLAGS = -std=c++17 -g -fPIC $(SIM_OPT) $(SIM_ARCH) -ffp-contract=fast -Wall -Wextra -Wno-unused-parameter -Wno-unknown-pragmas \
               -Itests/sim/include -Itests/sim -Itests/cuda -Ilibmiles -Ikernels $(filter -fopenmp,$(CFLAGS)) $(MPI_USER_CFLAGS) \
               $(if $(filter 1,$(HAVE_MPI)),-DOMPI_SKIP_MPICXX $(shell mpicc --showme:compile))
SIM_HDRS   = $(wildcard tests/sim/include/*.h) tests/sim/simt_internal.h
SIM_RT_OBJS = $(patsubst tests/sim/%.cpp,$(SIM_DIR)/rt/%.o,$(wildcard tests/sim/simt_*.cpp))
SIM_RT_OBJS := $(filter-out $(SIM_DIR)/rt/simt_coverage.o,$(SIM_RT_OBJS))
SIM_KERNEL_OBJS = $(CU_SRCS:kernels/%.cu=$(SIM_DIR)/kernels/%.o)
# MPI (the NCCL shim, test_dist_nccl) comes from libmiles-mpi: libmiles has none
SIM_LIBS   = $(SIM_DIR)/libmiles_cuda_sim.a $(SIM_DIR)/libsimt.a $(filter %.a,$(MPI_LIBS_BUILT)) $(BUILD)/libmiles.a
SIM_OPS_ARGS ?= --quick
SIM_MODEL_ARGS ?= --quick
SIM_RECORDS = $(SIM_DIR)/kernel-records.tsv
SIM_MPIRUN ?= mpirun $(if $(filter 0,$(shell id -u)),--allow-run-as-root )--oversubscribe --mca btl_vader_single_copy_mechanism none -x ASAN_OPTIONS=detect_leaks=0 -x SIMT_DEVICES=2

.PHONY: sim-lib sim-build sim-test sim-mutants sim-check

$(SIM_DIR)/rt/%.o: tests/sim/%.cpp $(SIM_HDRS)
	@mkdir -p $(dir $@)
	$(CXX) $(SIM_CXXFLAGS) -c $< -o $@
$(SIM_DIR)/kernels/%.o: kernels/%.cu kernels/*.cuh kernels/*.h libmiles/*.h $(SIM_HDRS)
	@mkdir -p $(dir $@)
	$(CXX) $(SIM_CXXFLAGS) -x c++ -c $< -o $@
$(SIM_DIR)/tests/%.o: tests/cuda/%.cu tests/golden_config.h tests/cuda/*.h kernels/*.cuh kernels/*.h libmiles/*.h $(SIM_HDRS)
	@mkdir -p $(dir $@)
	$(CXX) $(SIM_CXXFLAGS) -x c++ -c $< -o $@
$(SIM_DIR)/tests/%.o: tests/sim/%.cu kernels/*.cuh kernels/*.h libmiles/*.h $(SIM_HDRS)
	@mkdir -p $(dir $@)
	$(CXX) $(SIM_CXXFLAGS) -x c++ -c $< -o $@
$(SIM_DIR)/tests/%.o: tests/sim/%.cpp $(SIM_HDRS)
	@mkdir -p $(dir $@)
	$(CXX) $(SIM_CXXFLAGS) -c $< -o $@

$(SIM_DIR)/libsimt.a: $(SIM_RT_OBJS)
	rm -f $@ && ar rcs $@ $^
$(SIM_DIR)/libmiles_cuda_sim.a: $(SIM_KERNEL_OBJS)
	rm -f $@ && ar rcs $@ $^
sim-lib: $(SIM_DIR)/libmiles_cuda_sim.a $(SIM_DIR)/libsimt.a

SIM_PROGS = test_simt test_simt_blas test_cuda_ops test_cuda_fast test_cuda_model test_dist_nccl
$(SIM_PROGS:%=$(SIM_DIR)/%): $(SIM_DIR)/%: $(SIM_DIR)/tests/%.o $(SIM_LIBS)
	$(CXX) $< $(SIM_LIBS) -o $@ $(LDFLAGS) $(MPI_LIBS) $(LDLIBS)
$(SIM_DIR)/simt_coverage: tests/sim/simt_coverage.cpp
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 -O2 -Wall -Wextra $< -o $@

sim-build: $(SIM_PROGS:%=$(SIM_DIR)/%) $(SIM_DIR)/simt_coverage

# the CUDA backend object on the emulator: what `miles-train --device cuda` loads in
# backend-sim-test (MILES_CUDA_BACKEND=$(SIM_DIR)/libmiles_cuda_sim.so)
$(SIM_DIR)/backend_cuda.o: kernels/backend_cuda.cpp kernels/model_cuda.h libmiles/backend_internal.h libmiles/miles.h $(SIM_HDRS)
	@mkdir -p $(dir $@)
	$(CXX) $(SIM_CXXFLAGS) -c $< -o $@
# dist_nccl.o pulls in the emulator's NCCL shim, which is MPI (libmpi is shared:
# the same MPI_COMM_WORLD as the miles-train that loads this object)
$(SIM_DIR)/libmiles_cuda_sim.so: $(SIM_DIR)/backend_cuda.o $(SIM_KERNEL_OBJS) $(SIM_DIR)/libsimt.a $(BUILD)/libmiles.a kernels/backend_cuda.map
	$(CXX) $(BACKEND_SO_FLAGS) $(filter %.o %.a,$^) -o $@ $(LDFLAGS) $(MPI_LIBS) $(LDLIBS) -ldl
backend-sim-test: $(SIM_DIR)/libmiles_cuda_sim.so all $(BUILD)/tests/test_backend
	MILES_BIN=$(BUILD)/bin BACKEND=$(SIM_DIR)/libmiles_cuda_sim.so tests/test_backend_device.sh $(BUILD)/backend-sim
	MILES_CUDA_BACKEND=$(CURDIR)/$(SIM_DIR)/libmiles_cuda_sim.so $(BUILD)/tests/test_backend

# data parallel on the emulated GPUs: `mpirun -np 2 miles-train --device cuda` vs one
# process, the fp16 overflow flag, bucket plans, the refusals (tests/test_dp_device.sh)
# tests/cuda/dp_worker.c: one training run (alone or one rank of mpirun) for the script
$(BUILD)/tests/dp_worker: tests/cuda/dp_worker.c $(filter %.a,$(MPI_LIBS_BUILT)) $(BUILD)/libmiles.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(MPI_USER_CFLAGS) $< $(MPI_USER_LIBS) $(BUILD)/libmiles.a -o $@ $(LDFLAGS) $(LDLIBS)
dp-sim-test: $(SIM_DIR)/libmiles_cuda_sim.so $(BUILD)/tests/dp_worker $(SIM_DIR)/test_dist_nccl all
	MILES_BIN=$(BUILD)/bin WORKER=$(BUILD)/tests/dp_worker NCCL_TEST=$(SIM_DIR)/test_dist_nccl BACKEND=$(SIM_DIR)/libmiles_cuda_sim.so \
	  HAVE_MPI=$(HAVE_MPI) tests/test_dp_device.sh $(BUILD)/dp-sim

sim-test: sim-build
	@rm -f $(SIM_RECORDS) $(SIM_RECORDS).part1
	@echo "SIMT_RECORD=$(SIM_RECORDS).part1 $(SIM_DIR)/test_cuda_model $(SIM_MODEL_ARGS) --part 1 & (its output after the programs below)"; \
	SIMT_RECORD=$(SIM_RECORDS).part1 $(SIM_DIR)/test_cuda_model $(SIM_MODEL_ARGS) --part 1 > $(SIM_DIR)/model-part1.log 2>&1 & p1=$$!; \
	fg() { echo "$$*"; env "$$@" || { echo "FAILED: $$*"; kill $$p1 2>/dev/null; wait $$p1; exit 1; }; }; \
	fg $(SIM_DIR)/test_simt; \
	fg $(SIM_DIR)/test_simt_blas; \
	fg SIMT_RECORD=$(SIM_RECORDS) $(SIM_DIR)/test_cuda_ops $(SIM_OPS_ARGS); \
	fg SIMT_RECORD=$(SIM_RECORDS) SIMT_CC=70 $(SIM_DIR)/test_cuda_ops --quick; \
	fg SIMT_RECORD=$(SIM_RECORDS) $(SIM_DIR)/test_cuda_fast $(SIM_OPS_ARGS); \
	fg SIMT_RECORD=$(SIM_RECORDS) SIMT_CC=70 $(SIM_DIR)/test_cuda_fast --quick; \
	fg SIMT_RECORD=$(SIM_RECORDS) $(SIM_DIR)/test_cuda_model $(SIM_MODEL_ARGS) --part 2; \
	wait $$p1; r1=$$?; echo "== $(SIM_DIR)/test_cuda_model $(SIM_MODEL_ARGS) --part 1 (exit status $$r1):"; \
	cat $(SIM_DIR)/model-part1.log; cat $(SIM_RECORDS).part1 >> $(SIM_RECORDS); \
	[ $$r1 = 0 ] || { echo "FAILED: test_cuda_model --part 1"; exit 1; }
	SIMT_DEVICES=0 $(SIM_DIR)/test_cuda_ops --quick
	SIMT_DEVICES=0 $(SIM_DIR)/test_cuda_fast --quick
	SIMT_DEVICES=0 $(SIM_DIR)/test_cuda_model --quick
	@if command -v mpirun >/dev/null 2>&1 && [ "$(HAVE_MPI)" = 1 ]; then \
	  echo "$(SIM_MPIRUN) -np 2 $(SIM_DIR)/test_dist_nccl"; \
	  $(SIM_MPIRUN) -np 2 $(SIM_DIR)/test_dist_nccl || exit 1; \
	else echo "test_dist_nccl: no mpirun / MPI build: skipped"; fi
	$(SIM_DIR)/simt_coverage $(SIM_RECORDS) $(CU_SRCS)

sim-mutants: $(SIM_DIR)/tests/test_cuda_ops.o $(SIM_DIR)/test_cuda_ops $(SIM_DIR)/tests/test_cuda_fast.o \
             $(SIM_DIR)/test_cuda_fast $(SIM_LIBS)
	CXX="$(CXX)" SIM_CXXFLAGS="$(SIM_CXXFLAGS)" SIM_LINK="$(SIM_DIR)/libsimt.a $(BUILD)/libmiles.a $(LDFLAGS) $(MPI_LIBS) $(LDLIBS)" \
	  tests/sim/mutants.sh $(SIM_DIR)

# what `make check` runs: the emulator, the kernels and the tests with ASan + UBSan
# (in build-asan, beside `make asan`), then the planted bugs
sim-check:
	$(MAKE) -j2 BUILD=build-asan SAN=1 build-asan/libmiles.a $(if $(filter 1,$(HAVE_MPI)),build-asan/libmiles_mpi.a) sim-build
	$(MAKE) BUILD=build-asan SAN=1 sim-test sim-mutants
