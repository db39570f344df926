// The maths of fuse_views, shared by the CPU loop and the CUDA kernel (see fuse.h).
#pragma once

#include <cmath>
#include <cstdint>

#include "common/half.h"
#include "common/macros.h"
#include "kernels/fuse/fuse.h"

namespace auperf {

// sigmoid(s) = 1 / (1 + e^-s) for s >= 0 and e^s / (1 + e^s) for s < 0: exp never overflows.
AUPERF_HD inline double stable_sigmoid(double s) {
  if (s >= 0.0) return 1.0 / (1.0 + std::exp(-s));
  const double e = std::exp(s);
  return e / (1.0 + e);
}

template <int DType>
AUPERF_HD inline double load_logit(const void* logits, int64_t index) {
  if (DType == kFuseFloat32) return static_cast<double>(static_cast<const float*>(logits)[index]);
  return static_cast<double>(half_to_float(static_cast<const uint16_t*>(logits)[index]));
}

// Fuses AU l of face n: the whole reduction over views happens here (no atomics), so the CPU
// and CUDA paths sum in the same order.
template <int DType>
AUPERF_HD inline void fuse_one(const FuseParams& p, int64_t n, int64_t l) {
  const int64_t base = n * p.num_views * p.num_labels + l;
  double sum = 0.0;
  for (int64_t v = 0; v < p.num_views; ++v) sum += load_logit<DType>(p.logits, base + v * p.num_labels);
  const float prob = static_cast<float>(stable_sigmoid(sum / static_cast<double>(p.num_views)));
  const float threshold = p.thresholds[p.num_thresholds == 1 ? 0 : l];
  const int64_t out = n * p.num_labels + l;
  p.probabilities[out] = prob;
  p.active[out] = prob >= threshold ? 1 : 0;
}

}  // namespace auperf
