// CUDA launcher: one thread per (face, AU); consecutive threads read consecutive AUs.
#include "common/cuda_api.h"
#include "common/cuda_check.cuh"
#include "kernels/fuse/fuse.h"
#include "kernels/fuse/fuse_body.h"

namespace auperf {

template <int DType>
__global__ void fuse_kernel(FuseParams p) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= p.num_faces * p.num_labels) return;
  fuse_one<DType>(p, i / p.num_labels, i % p.num_labels);
}

void fuse_cuda(const FuseParams& p, void* stream, int device) {
  require_cuda("fuse_cuda");
  check_fuse_params(p, /*host_buffers=*/false);
  const int64_t total = p.num_faces * p.num_labels;
  if (total == 0) return;
  DeviceGuard guard(device);
  const int threads = 256;
  const unsigned blocks = static_cast<unsigned>((total + threads - 1) / threads);
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (p.dtype == kFuseFloat32) {
    fuse_kernel<kFuseFloat32><<<blocks, threads, 0, s>>>(p);
  } else {
    fuse_kernel<kFuseFloat16><<<blocks, threads, 0, s>>>(p);
  }
  AUPERF_CUDA_CHECK_LAUNCH("fuse_kernel");
}

}  // namespace auperf
