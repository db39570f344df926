// Batched face warping: alignment warp + crop + colour order + normalisation + layout, one pass.
//
// Convention:
//   - frames: (B, H, W, 3) uint8, interleaved channels; a frame's rows may be strided
//     (`row_stride` bytes apart) and frames `frame_stride` bytes apart; pixels are 3 bytes apart.
//   - matrices: (N, 2, 3) float64, row-major, src_to_dst: a frame point (x, y) maps to the crop
//     point M @ (x, y, 1), exactly as cv2.warpAffine's M without WARP_INVERSE_MAP. The kernel
//     samples crop pixel (x, y) at frame point inv(M) @ (x, y, 1).
//   - pixel centres lie at integer coordinates (pixel (i, j) covers [i-0.5, i+0.5) x [j-0.5, j+0.5)).
//   - bilinear interpolation between the 4 nearest pixel centres; a tap outside the frame reads
//     `border` (constant border, as cv2.BORDER_CONSTANT), so edges blend into the border value.
//   - output channel c holds input channel channel_map[c], written as value * scale[c] + bias[c]
//     (value in [0, 255]); uint8 output rounds half up and saturates.
//   - output layout NCHW (N, 3, Ho, Wo) or NHWC (N, Ho, Wo, 3), contiguous.
#pragma once

#include <cstdint>

namespace auperf {

enum WarpDType : int { kWarpFloat32 = 0, kWarpFloat16 = 1, kWarpUInt8 = 2 };
enum WarpLayout : int { kWarpNCHW = 0, kWarpNHWC = 1 };

struct WarpParams {
  const uint8_t* frames;       // (B, H, W, 3) uint8
  int64_t num_frames;          // B
  int64_t height, width;       // H, W
  int64_t frame_stride;        // bytes between frames
  int64_t row_stride;          // bytes between rows (>= 3 W)
  const double* matrices;      // (N, 2, 3) src_to_dst
  const int64_t* frame_index;  // (N,), each in [0, B)
  int64_t num_faces;           // N
  int64_t out_height, out_width;
  int channel_map[3];          // output channel c reads input channel channel_map[c]
  float scale[3];              // per output channel
  float bias[3];               // per output channel
  float border[3];             // per input channel, pixel units [0, 255]
  int dtype;                   // WarpDType
  int layout;                  // WarpLayout
  void* out;                   // output buffer, contiguous
};

// Sizes, dtype/layout codes and channel map; for the CPU path also frame_index range and
// finite, invertible matrices (device buffers cannot be read here: the Python wrapper checks
// those, and the CUDA kernel writes the border value for faces it cannot sample).
void check_warp_params(const WarpParams& p, bool host_buffers);

void warp_cpu(const WarpParams& p);
// The CPU loop warp_cpu uses on this machine: "avx2", "sse4.1" or "scalar".
const char* warp_cpu_path();
void warp_cuda(const WarpParams& p, void* stream, int device);

}  // namespace auperf
