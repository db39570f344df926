#include "kernels/warp/warp.h"

#include <cmath>
#include <string>

#include "common/errors.h"
#include "kernels/warp/warp_body.h"

namespace auperf {

void check_warp_params(const WarpParams& p, bool host_buffers) {
  if (p.num_frames < 0 || p.height < 1 || p.width < 1) {
    throw ShapeError("frames: expected (B, H, W, 3) with H, W >= 1, got (" +
                     std::to_string(p.num_frames) + ", " + std::to_string(p.height) + ", " +
                     std::to_string(p.width) + ", 3)");
  }
  if (p.row_stride < 3 * p.width || p.frame_stride < p.row_stride * (p.height - 1) + 3 * p.width) {
    throw ShapeError("frames: pixels must be 3 bytes apart and rows must not overlap (row stride " +
                     std::to_string(p.row_stride) + " bytes)");
  }
  if (p.out_height < 1 || p.out_width < 1) {
    throw ShapeError("size: expected positive output size, got (" + std::to_string(p.out_height) +
                     ", " + std::to_string(p.out_width) + ")");
  }
  if (p.num_faces < 0) throw ShapeError("matrices: negative number of faces");
  if (p.dtype < kWarpFloat32 || p.dtype > kWarpUInt8) {
    throw DTypeError("dtype: unknown output dtype code " + std::to_string(p.dtype));
  }
  if (p.layout != kWarpNCHW && p.layout != kWarpNHWC) {
    throw ValueRangeError("layout: unknown layout code " + std::to_string(p.layout));
  }
  for (int c = 0; c < 3; ++c) {
    if (p.channel_map[c] < 0 || p.channel_map[c] > 2) {
      throw ValueRangeError("channel order: channel index out of range");
    }
  }
  if (p.num_faces > 0 && p.num_frames == 0) {
    throw IndexRangeError("frame_index: " + std::to_string(p.num_faces) +
                          " faces refer to an empty frame batch");
  }
  if (!host_buffers || p.num_faces == 0) return;
  for (int64_t n = 0; n < p.num_faces; ++n) {
    const int64_t f = p.frame_index[n];
    if (f < 0 || f >= p.num_frames) {
      throw IndexRangeError("frame_index: entry " + std::to_string(n) + " is " + std::to_string(f) +
                            ", expected 0 <= index < " + std::to_string(p.num_frames));
    }
    const double* m = p.matrices + n * 6;
    for (int i = 0; i < 6; ++i) {
      if (!std::isfinite(m[i])) {
        throw NonFiniteError("matrices: face " + std::to_string(n) + " holds NaN or Inf");
      }
    }
    double inv[6];
    if (!invert_affine(m, inv)) {
      throw SingularMatrixError("matrices: face " + std::to_string(n) +
                                " is singular (zero determinant)");
    }
  }
}

}  // namespace auperf
