/* The host emulation header lives with the kernels it compiles
 * (kernels/cuda_emu.h): kernels/ include no header of tests/. */
#include "../../kernels/cuda_emu.h"
