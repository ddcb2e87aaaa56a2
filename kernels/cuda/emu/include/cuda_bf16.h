/* cuda_bf16.h — emulator stand-in for the CUDA header of that name: everything is in cuda_emu.h. */
#include "../cuda_emu.h"
