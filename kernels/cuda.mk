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
#   cuda-run-test  build and run it (exit 0 with "no CUDA device" on a CPU box)

CXX       ?= g++
CUDA_HOME ?= $(patsubst %/bin/,%,$(dir $(shell command -v $(NVCC) 2>/dev/null)))
CUDA_LIBDIR ?= $(firstword $(wildcard $(CUDA_HOME)/lib64 $(CUDA_HOME)/lib $(CUDA_HOME)/targets/x86_64-linux/lib))
CUDA_LIBS  = -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) -lcublasLt -lcublas -lcudart

.PHONY: cuda-lib cuda-test cuda-run-test

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

cuda-test: $(BUILD)/cuda/test_cuda_ops

cuda-run-test: $(BUILD)/cuda/test_cuda_ops
	$(BUILD)/cuda/test_cuda_ops
