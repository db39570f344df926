// The maths of fuse_views, shared by the CPU loop and the CUDA kernel (see fuse.h).
#pragma once

#include <cstdint>

#include "common/fastmath.h"
#include "common/half.h"
#include "common/macros.h"
#include "kernels/fuse/fuse.h"

namespace auperf {

template <int DType>
AUPERF_HD inline float load_logit(const void* logits, int64_t index) {
  if (DType == kFuseFloat32) return static_cast<const float*>(logits)[index];
  return half_to_float(static_cast<const uint16_t*>(logits)[index]);
}

// One view's share of the mean: x / V, taken as x * (1 / V) (exact for V = 1, 2, 4, ...). Summing
// shares instead of values keeps the running sum within the float range for any finite input.
template <int DType>
AUPERF_HD inline float view_share(const FuseParams& p, int64_t n, int64_t v, int64_t l,
                                  float inv_views) {
  return load_logit<DType>(p.logits, (n * p.num_views + v) * p.num_labels + l) * inv_views;
}

AUPERF_HD inline float threshold_of(const FuseParams& p, int64_t l) {
  return p.thresholds[p.num_thresholds == 1 ? 0 : l];
}

AUPERF_HD inline uint8_t is_active(float prob, float threshold) { return prob >= threshold ? 1 : 0; }

AUPERF_HD inline void write_fused(const FuseParams& p, int64_t n, int64_t l, float mean) {
  const float prob = sigmoid_f32(mean);
  p.probabilities[n * p.num_labels + l] = prob;
  p.active[n * p.num_labels + l] = is_active(prob, threshold_of(p, l));
}

// The whole reduction over views for AU l of face n, views in order 0..V-1 (no atomics).
template <int DType>
AUPERF_HD inline void fuse_one(const FuseParams& p, int64_t n, int64_t l) {
  const float inv_views = 1.0f / static_cast<float>(p.num_views);
  float mean = 0.0f;
  for (int64_t v = 0; v < p.num_views; ++v) mean += view_share<DType>(p, n, v, l, inv_views);
  write_fused(p, n, l, mean);
}

}  // namespace auperf
