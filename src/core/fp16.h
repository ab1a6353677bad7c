// IEEE binary16 and bfloat16 conversions, bit-exact with ggml's software paths:
// f32 -> f16 rounds to nearest even (as F16C does; NaN -> 0x7e00 with the sign, as ggml's software path); f32 -> bf16 rounds to nearest even and
// quiets NaNs (as ggml_compute_fp32_to_bf16).
#pragma once
#include <bit>
#include <cstdint>

namespace imq {

inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t man = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: value = man * 2^-24
      float f = float(man) * 5.9604644775390625e-8f;
      return sign ? -f : f;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  }
  return std::bit_cast<float>(bits);
}

inline uint16_t f32_to_f16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000;
  const uint32_t absx = x & 0x7fffffff;
  if (absx > 0x7f800000u) return uint16_t(sign | 0x7e00);  // every NaN -> canonical quiet NaN, as ggml
  if (absx == 0x7f800000u) return uint16_t(sign | 0x7c00);
  if (absx >= 0x477ff000u) return uint16_t(sign | 0x7c00);  // rounds to >= 65520 -> Inf
  if (absx < 0x38800000u) {  // result is subnormal or zero: round(abs * 2^24) half to even
    if (absx < 0x33000000u) return uint16_t(sign);  // < 2^-25 -> 0 (2^-25 exactly ties to 0)
    const uint32_t e = absx >> 23;
    const uint32_t m = (absx & 0x7fffff) | 0x800000;
    const uint32_t shift = 126 - e;  // m * 2^(e-150) * 2^24 = m >> (126 - e)
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    return uint16_t(sign | q);
  }
  // normal: rebias exponent, round mantissa 23 -> 10 bits half to even
  uint32_t r = absx - 0x38000000u;  // exponent - 112
  const uint32_t rem = r & 0x1fff;
  r >>= 13;
  if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
  return uint16_t(sign | r);
}

// v rounded to the nearest half-precision value (ties to even), as a float.
inline float f16_round(float v) { return f16_to_f32(f32_to_f16(v)); }

inline float bf16_to_f32(uint16_t h) { return std::bit_cast<float>(uint32_t(h) << 16); }

inline uint16_t f32_to_bf16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffff) > 0x7f800000u) return uint16_t((x >> 16) | 64);  // quiet NaN
  return uint16_t((x + (0x7fff + ((x >> 16) & 1))) >> 16);
}

}  // namespace imq
