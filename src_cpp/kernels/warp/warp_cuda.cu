// CUDA launcher: one thread per output pixel, consecutive threads along x (coalesced stores in
// both layouts), maths in warp_body.h. Each thread inverts its face's 2x3 matrix: ten flops,
// cheaper than a separate pass and a scratch buffer.
#include "common/cuda_api.h"
#include "common/cuda_check.cuh"
#include "kernels/warp/warp.h"
#include "kernels/warp/warp_body.h"

namespace auperf {

template <int DType, int Layout>
__global__ void warp_kernel(WarpParams p) {
  const int64_t total = p.num_faces * p.out_height * p.out_width;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const int64_t x = i % p.out_width;
  const int64_t y = (i / p.out_width) % p.out_height;
  const int64_t n = i / (p.out_width * p.out_height);
  const int64_t f = p.frame_index[n];
  double inv[6];
  float v[3];
  if (f < 0 || f >= p.num_frames || !invert_affine(p.matrices + n * 6, inv)) {
    // Unusable face (only when the caller skipped validation): border value everywhere.
    sample(p, p.frames, kTapsOutside, 0, 0, 0.0f, 0.0f, v);
  } else {
    double sx, sy;
    int32_t x0, y0;
    float ax, ay;
    source_point(inv, x, y, &sx, &sy);
    const int tap_case = locate(sx, sy, p.width, p.height, &x0, &y0, &ax, &ay);
    sample(p, p.frames + f * p.frame_stride, tap_case, x0, y0, ax, ay, v);
  }
  store_pixel<DType, Layout>(p, n, y, x, v);
}

template <int DType>
void launch_layout(const WarpParams& p, unsigned blocks, int threads, cudaStream_t s) {
  if (p.layout == kWarpNCHW) {
    warp_kernel<DType, kWarpNCHW><<<blocks, threads, 0, s>>>(p);
  } else {
    warp_kernel<DType, kWarpNHWC><<<blocks, threads, 0, s>>>(p);
  }
}

void warp_cuda(const WarpParams& p, void* stream, int device) {
  require_cuda("warp_cuda");
  check_warp_params(p, /*host_buffers=*/false);
  const int64_t total = p.num_faces * p.out_height * p.out_width;
  if (total == 0) return;
  DeviceGuard guard(device);
  const int threads = 256;
  const unsigned blocks = static_cast<unsigned>((total + threads - 1) / threads);
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (p.dtype) {
    case kWarpFloat32: launch_layout<kWarpFloat32>(p, blocks, threads, s); break;
    case kWarpFloat16: launch_layout<kWarpFloat16>(p, blocks, threads, s); break;
    default: launch_layout<kWarpUInt8>(p, blocks, threads, s); break;
  }
  AUPERF_CUDA_CHECK_LAUNCH("warp_kernel");
}

}  // namespace auperf
