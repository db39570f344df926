// IEEE binary16 <-> binary32 conversions usable on host and device.
//
// Written with integer bit operations so the CPU and CUDA builds convert identically without
// depending on cuda_fp16.h on the host. float -> half rounds to nearest, ties to even; values
// beyond the half range become +-inf; NaN stays NaN.
#pragma once

#include <cstdint>
#include <cstring>

#include "common/macros.h"

namespace auperf {

AUPERF_HD inline float bits_to_float(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

AUPERF_HD inline uint32_t float_to_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

AUPERF_HD inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in binary32.
    const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) {
    return bits_to_float(sign | 0x7f800000u | (mantissa << 13));
  }
  return bits_to_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

AUPERF_HD inline uint16_t float_to_half(float f) {
  uint32_t x = float_to_bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) {  // inf or NaN (NaN keeps a quiet mantissa bit)
    return static_cast<uint16_t>(sign | 0x7c00u | (x > 0x7f800000u ? 0x200u : 0u));
  }
  if (x >= 0x477ff000u) {  // rounds to a value >= 65520: overflow to inf
    return static_cast<uint16_t>(sign | 0x7c00u);
  }
  if (x < 0x38800000u) {
    // Below the smallest normal half (2^-14): let the FPU round by adding 0.5, whose ulp is
    // 2^-24, the half subnormal step. The low bits of the sum are the rounded mantissa.
    const float shifted = bits_to_float(x) + 0.5f;
    return static_cast<uint16_t>(sign | (float_to_bits(shifted) - 0x3f000000u));
  }
  // Normal range: rebias the exponent and round the 13 dropped mantissa bits to nearest even.
  const uint32_t odd = (x >> 13) & 1u;
  x += 0xc8000fffu + odd;  // (15 - 127) << 23, plus the rounding bias
  return static_cast<uint16_t>(sign | (x >> 13));
}

}  // namespace auperf
