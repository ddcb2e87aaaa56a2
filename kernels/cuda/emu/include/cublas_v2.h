/* cublas_v2.h — emulator stand-in: a column-major reference GEMM behind the cuBLAS entry points. */
#include "../emu_cublas.h"
