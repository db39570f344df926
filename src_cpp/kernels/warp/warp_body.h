// The maths of warp_faces, shared by the CPU loop and the CUDA kernel (see warp.h).
//
// A crop pixel is computed in three steps, each a function below: map the pixel centre to the
// frame (source_point), split the point into a base pixel and bilinear weights (locate), and
// interpolate the 4 taps (sample_inside / sample_border). The CPU launcher runs the steps
// row by row, the CUDA kernel pixel by pixel; both call the same functions.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/half.h"
#include "common/macros.h"
#include "kernels/warp/warp.h"

namespace auperf {

// Inverts a 2x3 affine matrix (src_to_dst -> dst_to_src). Returns false for a zero or
// non-finite determinant, leaving NaN in `inv`.
AUPERF_HD inline bool invert_affine(const double* AUPERF_RESTRICT m, double* AUPERF_RESTRICT inv) {
  const double det = m[0] * m[4] - m[1] * m[3];
  if (!(det != 0.0) || !std::isfinite(det)) {
    for (int i = 0; i < 6; ++i) inv[i] = NAN;
    return false;
  }
  const double r = 1.0 / det;
  inv[0] = m[4] * r;
  inv[1] = -m[1] * r;
  inv[2] = (m[1] * m[5] - m[4] * m[2]) * r;
  inv[3] = -m[3] * r;
  inv[4] = m[0] * r;
  inv[5] = (m[3] * m[2] - m[0] * m[5]) * r;
  return true;
}

// Frame point sampled by crop pixel (x, y), in double: float32 would lose ~1e-4 px at x ~ 2000.
AUPERF_HD inline void source_point(const double* AUPERF_RESTRICT inv, int64_t x, int64_t y,
                                   double* sx, double* sy) {
  *sx = inv[0] * static_cast<double>(x) + inv[1] * static_cast<double>(y) + inv[2];
  *sy = inv[3] * static_cast<double>(x) + inv[4] * static_cast<double>(y) + inv[5];
}

enum TapCase : int { kTapsOutside = 0, kTapsInside = 1, kTapsPartial = 2 };

// Base pixel (x0, y0) = floor(sx, sy) and weights (ax, ay) in [0, 1). Returns whether all four
// taps lie inside the frame, all outside (or the point is NaN), or some of each.
AUPERF_HD inline int locate(double sx, double sy, int64_t width, int64_t height, int32_t* x0,
                            int32_t* y0, float* ax, float* ay) {
  // Checked in double before any integer conversion, so huge or NaN coordinates are safe.
  if (!(sx > -1.0 && sy > -1.0 && sx < static_cast<double>(width) &&
        sy < static_cast<double>(height))) {
    *x0 = 0;
    *y0 = 0;
    *ax = 0.0f;
    *ay = 0.0f;
    return kTapsOutside;
  }
  // floor() without a library call: truncation, one step down for negative fractions.
  int32_t ix = static_cast<int32_t>(sx), iy = static_cast<int32_t>(sy);
  ix -= static_cast<double>(ix) > sx ? 1 : 0;
  iy -= static_cast<double>(iy) > sy ? 1 : 0;
  *x0 = ix;
  *y0 = iy;
  *ax = static_cast<float>(sx - static_cast<double>(ix));
  *ay = static_cast<float>(sy - static_cast<double>(iy));
  const bool inside = ix >= 0 && iy >= 0 && ix + 1 < width && iy + 1 < height;
  return inside ? kTapsInside : kTapsPartial;
}

AUPERF_HD inline float bilinear(float a, float b, float d, float e, float ax, float ay) {
  const float top = a + ax * (b - a);
  const float bottom = d + ax * (e - d);
  return top + ay * (bottom - top);
}

// All four taps inside the frame.
AUPERF_HD inline void sample_inside(const uint8_t* AUPERF_RESTRICT frame, int64_t row_stride,
                                    int32_t x0, int32_t y0, float ax, float ay, float* v) {
  const uint8_t* p00 = frame + static_cast<int64_t>(y0) * row_stride + static_cast<int64_t>(x0) * 3;
  const uint8_t* p10 = p00 + row_stride;
  for (int c = 0; c < 3; ++c) {
    v[c] = bilinear(static_cast<float>(p00[c]), static_cast<float>(p00[c + 3]),
                    static_cast<float>(p10[c]), static_cast<float>(p10[c + 3]), ax, ay);
  }
}

// Some taps outside: those read the border value of their channel.
AUPERF_HD inline void sample_border(const uint8_t* AUPERF_RESTRICT frame, int64_t height,
                                    int64_t width, int64_t row_stride, int32_t x0, int32_t y0,
                                    float ax, float ay, const float* AUPERF_RESTRICT border,
                                    float* v) {
  const bool in_x0 = x0 >= 0, in_x1 = x0 + 1 < width, in_y0 = y0 >= 0, in_y1 = y0 + 1 < height;
  const int64_t c0 = static_cast<int64_t>(x0) * 3;
  const uint8_t* row0 = frame + static_cast<int64_t>(y0) * row_stride;
  const uint8_t* row1 = row0 + row_stride;
  for (int c = 0; c < 3; ++c) {
    const float a = (in_y0 && in_x0) ? static_cast<float>(row0[c0 + c]) : border[c];
    const float b = (in_y0 && in_x1) ? static_cast<float>(row0[c0 + 3 + c]) : border[c];
    const float d = (in_y1 && in_x0) ? static_cast<float>(row1[c0 + c]) : border[c];
    const float e = (in_y1 && in_x1) ? static_cast<float>(row1[c0 + 3 + c]) : border[c];
    v[c] = bilinear(a, b, d, e, ax, ay);
  }
}

// Samples the frame for one located point, whatever its tap case.
AUPERF_HD inline void sample(const WarpParams& p, const uint8_t* AUPERF_RESTRICT frame, int tap_case,
                             int32_t x0, int32_t y0, float ax, float ay, float* v) {
  if (tap_case == kTapsInside) {
    sample_inside(frame, p.row_stride, x0, y0, ax, ay, v);
  } else if (tap_case == kTapsPartial) {
    sample_border(frame, p.height, p.width, p.row_stride, x0, y0, ax, ay, p.border, v);
  } else {
    v[0] = p.border[0];
    v[1] = p.border[1];
    v[2] = p.border[2];
  }
}

template <int DType>
AUPERF_HD inline void store_value(void* out, int64_t index, float value) {
  if (DType == kWarpFloat32) {
    static_cast<float*>(out)[index] = value;
  } else if (DType == kWarpFloat16) {
    static_cast<uint16_t*>(out)[index] = float_to_half(value);
  } else {
    const float clamped = value < 0.0f ? 0.0f : (value > 255.0f ? 255.0f : value);
    static_cast<uint8_t*>(out)[index] = static_cast<uint8_t>(clamped + 0.5f);
  }
}

// Channel order, normalisation, dtype and layout of crop pixel (x, y) of face n.
template <int DType, int Layout>
AUPERF_HD inline void store_pixel(const WarpParams& p, int64_t n, int64_t y, int64_t x,
                                  const float* v) {
  const int64_t plane = p.out_height * p.out_width;
  for (int c = 0; c < 3; ++c) {
    const float value = v[p.channel_map[c]] * p.scale[c] + p.bias[c];
    const int64_t index = Layout == kWarpNCHW ? (n * 3 + c) * plane + y * p.out_width + x
                                              : ((n * p.out_height + y) * p.out_width + x) * 3 + c;
    store_value<DType>(p.out, index, value);
  }
}

}  // namespace auperf
