// Fused sigmoid-averaging thresholding of the views' AU logits (M0's inference rule).
//
// Convention: logits (N, V, L), contiguous, float32 or float16. For each face n and AU l:
//   s = (1/V) sum_v logits[n, v, l]   (accumulated in float64: no overflow, order-independent
//                                      up to rounding)
//   p = sigmoid(s)                    (computed without overflow for any finite or infinite s)
//   active = p >= threshold[l]        (one threshold for all AUs, or one per AU)
// NaN logits give p = NaN and active = false.
#pragma once

#include <cstdint>

namespace auperf {

enum FuseDType : int { kFuseFloat32 = 0, kFuseFloat16 = 1 };

struct FuseParams {
  const void* logits;        // (N, V, L)
  int dtype;                 // FuseDType
  int64_t num_faces;         // N
  int64_t num_views;         // V >= 1
  int64_t num_labels;        // L >= 1
  const float* thresholds;   // (T,), T == 1 or T == L, each in [0, 1]
  int64_t num_thresholds;    // T
  float* probabilities;      // (N, L) output
  uint8_t* active;           // (N, L) output, 0 or 1 (numpy bool)
};

void check_fuse_params(const FuseParams& p, bool host_buffers);
void fuse_cpu(const FuseParams& p);
void fuse_cuda(const FuseParams& p, void* stream, int device);

}  // namespace auperf
