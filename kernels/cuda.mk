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
#              $(BUILD)/cuda/test_cuda_model  (tests/cuda/test_cuda_model.cu: the GPU
#              model vs the CPU model and the golden fixtures)
#              $(BUILD)/cuda/bench_cuda_model (bench/bench_cuda_model.cu)
#              (`make cuda` builds cuda-test: every program here is compile-checked)
#   cuda-run-test  build and run the three tests (the GPU ones exit 0 with "no CUDA
#              device" on a CPU box)
#   cuda-emu-test  $(BUILD)/cuda/test_cuda_model_emu: kernels/model_cuda.cu compiled by
#              the HOST compiler with -DMILES_CUDA_HOST_EMULATION (tests/cuda/cuda_emu.h),
#              the *_cuda ops replaced by the CPU ops: the GPU driver's logic checked
#              bitwise against the CPU model, no GPU and no nvcc needed; and
#              $(BUILD)/cuda/test_cuda_model_hostemu: test_cuda_model.cu on the same
#              emulation (the GPU test's own logic); both built and run

CXX       ?= g++
CUDA_HOME ?= $(patsubst %/bin/,%,$(dir $(shell command -v $(NVCC) 2>/dev/null)))
CUDA_LIBDIR ?= $(firstword $(wildcard $(CUDA_HOME)/lib64 $(CUDA_HOME)/lib $(CUDA_HOME)/targets/x86_64-linux/lib))
CUDA_LIBS  = -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) -lcublasLt -lcublas -lcudart

.PHONY: cuda-lib cuda-test cuda-run-test cuda-emu-test

$(BUILD)/cuda/libmiles_cuda.a: $(CU_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

cuda-lib: $(BUILD)/cuda/libmiles_cuda.a

$(BUILD)/cuda-test/test_cuda_ops.o: tests/cuda/test_cuda_ops.cu kernels/*.cuh kernels/*.h libmiles/*.h
	@mkdir -p $(dir $@)
	$(NVCC) -O2 -std=c++17 $(CUDA_GENCODE) -Ilibmiles -Ikernels -c $< -o $@

# linked by the host C++ compiler (no relocatable device code is used);
# LDFLAGS carries -fopenmp for the CPU library
$(BUILD)/cuda/test_cuda_ops: $(BUILD)/cuda-test/test_cuda_ops.o $(BUILD)/cuda/libmiles_cuda.a $(BUILD)/libmiles.a
	@mkdir -p $(dir $@)
	$(CXX) $^ -o $@ $(LDFLAGS) $(CUDA_LIBS) $(LDLIBS)

# the model test and the model benchmark: same recipe
$(BUILD)/cuda-test/test_cuda_model.o: tests/cuda/test_cuda_model.cu kernels/*.cuh kernels/*.h libmiles/*.h
	@mkdir -p $(dir $@)
	$(NVCC) -O2 -std=c++17 $(CUDA_GENCODE) -Ilibmiles -Ikernels -c $< -o $@

$(BUILD)/cuda-test/bench_cuda_model.o: bench/bench_cuda_model.cu kernels/*.cuh kernels/*.h libmiles/*.h
	@mkdir -p $(dir $@)
	$(NVCC) -O2 -std=c++17 $(CUDA_GENCODE) -Ilibmiles -Ikernels -c $< -o $@

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
$(BUILD)/cuda-emu/%.o: kernels/%.cu kernels/model_cuda.h kernels/model_cuda_internal.h tests/cuda/cuda_emu.h kernels/cuda_ops.h libmiles/*.h
	@mkdir -p $(dir $@)
	$(CXX) $(EMU_CXXFLAGS) -x c++ -c $< -o $@

$(BUILD)/cuda-emu/test_cuda_model_emu.o: tests/cuda/test_cuda_model_emu.cpp kernels/model_cuda.h tests/cuda/cuda_emu.h kernels/cuda_ops.h libmiles/*.h
	@mkdir -p $(dir $@)
	$(CXX) $(EMU_CXXFLAGS) -c $< -o $@

$(BUILD)/cuda-emu/cuda_emu_ops.o: tests/cuda/cuda_emu_ops.cpp tests/cuda/cuda_emu.h kernels/cuda_ops.h libmiles/*.h
	@mkdir -p $(dir $@)
	$(CXX) $(EMU_CXXFLAGS) -c $< -o $@

$(BUILD)/cuda-emu/test_cuda_model.o: tests/cuda/test_cuda_model.cu kernels/model_cuda.h tests/cuda/cuda_emu.h kernels/cuda_ops.h libmiles/*.h
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

cuda-test: $(BUILD)/cuda/test_cuda_ops $(BUILD)/cuda/test_cuda_model $(BUILD)/cuda/bench_cuda_model \
           $(BUILD)/cuda/test_cuda_model_emu $(BUILD)/cuda/test_cuda_model_hostemu

cuda-run-test: $(BUILD)/cuda/test_cuda_ops $(BUILD)/cuda/test_cuda_model $(BUILD)/cuda/test_cuda_model_emu
	$(BUILD)/cuda/test_cuda_ops
	$(BUILD)/cuda/test_cuda_model
	$(BUILD)/cuda/test_cuda_model_emu

# NCCL all-reduce wrapper test (compile + link here; run with mpirun -np <GPUs> on a GPU node)
$(BUILD)/cuda-test/test_dist_nccl.o: tests/cuda/test_dist_nccl.cu kernels/dist_nccl.h libmiles/miles.h
	@mkdir -p $(dir $@)
	$(NVCC) -O2 -std=c++17 $(CUDA_GENCODE) $(MPI_USER_CFLAGS) -Ilibmiles -Ikernels -c $< -o $@
# MPI comes from libmiles-mpi (libmiles has none)
$(BUILD)/cuda/test_dist_nccl: $(BUILD)/cuda-test/test_dist_nccl.o $(BUILD)/cuda/dist_nccl.o $(filter %.a,$(MPI_LIBS_BUILT)) $(BUILD)/libmiles.a
	@mkdir -p $(dir $@)
	$(CXX) $^ -o $@ $(LDFLAGS) $(CUDA_LIBS) -lnccl $(MPI_LIBS) $(LDLIBS)
cuda-test: $(BUILD)/cuda/test_dist_nccl
