/* emu_f16_ref.c — reference f16 conversions and arithmetic from GCC's _Float16 (libgcc soft-fp), written in C
 * because g++ 12 has no _Float16; the emulator's __half is checked against these bit for bit. */
#include <stdint.h>
#include <string.h>

static uint16_t bits_of(_Float16 h) { uint16_t b; memcpy(&b, &h, 2); return b; }
static _Float16 from_bits(uint16_t b) { _Float16 h; memcpy(&h, &b, 2); return h; }

uint16_t emu_ref_f32_to_f16(float f) { return bits_of((_Float16)f); }
uint16_t emu_ref_f64_to_f16(double d) { return bits_of((_Float16)d); }
float emu_ref_f16_to_f32(uint16_t h) { return (float)from_bits(h); }
/* a op b rounded once: the exact value is formed in __float128 (enough bits for any two halves) */
uint16_t emu_ref_f16_add(uint16_t a, uint16_t b) { return bits_of((_Float16)((__float128)from_bits(a) + (__float128)from_bits(b))); }
uint16_t emu_ref_f16_sub(uint16_t a, uint16_t b) { return bits_of((_Float16)((__float128)from_bits(a) - (__float128)from_bits(b))); }
uint16_t emu_ref_f16_mul(uint16_t a, uint16_t b) { return bits_of((_Float16)((__float128)from_bits(a) * (__float128)from_bits(b))); }
uint16_t emu_ref_f16_div(uint16_t a, uint16_t b) { return bits_of((_Float16)((__float128)from_bits(a) / (__float128)from_bits(b))); }
uint16_t emu_ref_f16_fma(uint16_t a, uint16_t b, uint16_t c) {
    return bits_of((_Float16)((__float128)from_bits(a) * (__float128)from_bits(b) + (__float128)from_bits(c)));
}
