/* mma.h — emulator stand-in: nvcuda::wmma as warp collectives. */
#include "../emu_wmma.h"
