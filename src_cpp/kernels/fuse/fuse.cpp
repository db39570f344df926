#include "kernels/fuse/fuse.h"

#include <cmath>
#include <string>

#include "common/errors.h"

namespace auperf {

void check_fuse_params(const FuseParams& p, bool host_buffers) {
  if (p.dtype != kFuseFloat32 && p.dtype != kFuseFloat16) {
    throw DTypeError("logits: expected float32 or float16, got dtype code " + std::to_string(p.dtype));
  }
  if (p.num_faces < 0 || p.num_views < 1 || p.num_labels < 1) {
    throw ShapeError("logits: expected (N, V, L) with V >= 1 and L >= 1, got (" +
                     std::to_string(p.num_faces) + ", " + std::to_string(p.num_views) + ", " +
                     std::to_string(p.num_labels) + ")");
  }
  if (p.num_thresholds != 1 && p.num_thresholds != p.num_labels) {
    throw ShapeError("thresholds: expected a scalar or " + std::to_string(p.num_labels) +
                     " values (one per AU), got " + std::to_string(p.num_thresholds));
  }
  if (!host_buffers) return;
  for (int64_t i = 0; i < p.num_thresholds; ++i) {
    const float t = p.thresholds[i];
    if (!(t >= 0.0f && t <= 1.0f)) {
      throw ValueRangeError("thresholds: entry " + std::to_string(i) + " is " + std::to_string(t) +
                            ", expected a value in [0, 1]");
    }
  }
}

}  // namespace auperf
