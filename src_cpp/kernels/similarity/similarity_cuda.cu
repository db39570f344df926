// CUDA launcher: one thread per face, maths in similarity_body.h.
#include "common/cuda_api.h"
#include "common/cuda_check.cuh"
#include "kernels/similarity/similarity.h"
#include "kernels/similarity/similarity_body.h"

namespace auperf {

__global__ void similarity_kernel(SimilarityParams p) {
  const int64_t n = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (n >= p.num_faces) return;
  p.status[n] = estimate_similarity_one(p.points + n * p.num_points * 2, p.template_,
                                        p.num_points, p.matrices + n * 6);
}

void similarity_cuda(const SimilarityParams& p, void* stream, int device) {
  require_cuda("similarity_cuda");
  check_similarity_params(p);
  if (p.num_faces == 0) return;
  DeviceGuard guard(device);
  const int threads = 128;
  const int64_t blocks = (p.num_faces + threads - 1) / threads;
  similarity_kernel<<<static_cast<unsigned>(blocks), threads, 0,
                      static_cast<cudaStream_t>(stream)>>>(p);
  AUPERF_CUDA_CHECK_LAUNCH("similarity_kernel");
}

}  // namespace auperf
