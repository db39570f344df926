// Branch-free float maths written once for host and device, so the CPU loops vectorise and the
// CPU and CUDA builds compute the same function (library expf differs between them).
#pragma once

#include <cstdint>

#include "common/half.h"
#include "common/macros.h"

namespace auperf {

// e^x for float x, relative error below 2e-7 over the whole range; x < -104 gives 0, +inf gives
// +inf, NaN stays NaN. Cody-Waite reduction x = n ln2 + r with |r| <= ln2/2, a degree-7 Taylor
// polynomial for e^r (truncation error < 6e-9), then 2^n applied in two normal-range steps so
// results down to the subnormals stay accurate.
AUPERF_HD inline float exp_f32(float x) {
  const bool is_nan = x != x;
  float xc = is_nan ? 0.0f : x;
  xc = xc < -104.0f ? -104.0f : (xc > 88.8f ? 88.8f : xc);
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to the nearest integer
  const float nf = (xc * 1.44269504088896341f + magic) - magic;
  const float r = (xc - nf * 0.693145751953125f) - nf * 1.428606765330187e-06f;
  float poly = 1.0f / 5040.0f;
  poly = poly * r + 1.0f / 720.0f;
  poly = poly * r + 1.0f / 120.0f;
  poly = poly * r + 1.0f / 24.0f;
  poly = poly * r + 1.0f / 6.0f;
  poly = poly * r + 0.5f;
  poly = poly * r + 1.0f;
  poly = poly * r + 1.0f;
  const int32_t n = static_cast<int32_t>(nf);
  const int32_t n1 = n / 2, n2 = n - n1;
  const float s1 = bits_to_float(static_cast<uint32_t>(n1 + 127) << 23);
  const float s2 = bits_to_float(static_cast<uint32_t>(n2 + 127) << 23);
  float result = poly * s1 * s2;
  result = x < -104.0f ? 0.0f : result;
  result = x > 88.8f ? x * 2.0f : result;  // e^x overflows float: +inf (x * 2 keeps inf as inf)
  return is_nan ? x : result;
}

// sigmoid(s) = 1 / (1 + e^-s), through e = e^-|s| so that nothing overflows: s >= 0 gives
// 1 / (1 + e), s < 0 gives e / (1 + e). NaN stays NaN.
AUPERF_HD inline float sigmoid_f32(float s) {
  const float a = s < 0.0f ? -s : s;
  const float e = exp_f32(-a);
  const float r = 1.0f / (1.0f + e);
  return s >= 0.0f ? r : (s < 0.0f ? e * r : s);
}

}  // namespace auperf
