// CUDA launcher: one warp per face, lanes striding over D; the largest |dx| and the finiteness
// test are warp reductions (max and any are exact, so the result matches the CPU bit for bit).
// The number of faces still active is counted on the device and copied back (the call
// synchronises the stream).
#include "common/cuda_api.h"
#include "common/cuda_check.cuh"
#include "kernels/fit/fit.h"
#include "kernels/fit/fit_body.h"

namespace auperf {

constexpr int kFitWarpsPerBlock = 4;

__global__ void fit_kernel(FitParams p, unsigned long long* still_active) {
  const int lane = threadIdx.x & 31;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kFitWarpsPerBlock + (threadIdx.x >> 5);
  if (i >= p.num_faces || !p.active[i]) return;  // the whole warp leaves together
  const int64_t row = i * p.dim;
  bool finite = true;
  for (int64_t d = lane; d < p.dim; d += 32) {
    finite &= fit_finite(p.grads[row + d], p.params[row + d]);
  }
  if (!__all_sync(0xffffffffu, finite)) {
    if (lane == 0) fit_face_reject(p, i);
    return;
  }
  const FitFace f = fit_face_begin(p, i);
  float max_dx = 0.0f;
  for (int64_t d = lane; d < p.dim; d += 32) {
    float x = p.params[row + d], m = p.m[row + d], v = p.v[row + d];
    const float dx =
        fit_update(x, m, v, p.grads[row + d], f, p.beta1, p.beta2, p.eps, p.lower, p.upper);
    p.params[row + d] = x;
    p.m[row + d] = m;
    p.v[row + d] = v;
    max_dx = fmaxf(max_dx, dx);
  }
  for (int offset = 16; offset > 0; offset >>= 1) {
    max_dx = fmaxf(max_dx, __shfl_xor_sync(0xffffffffu, max_dx, offset));
  }
  if (lane == 0 && fit_face_end(p, i, f.t, fit_decide(p, i, f.t, max_dx))) {
    atomicAdd(still_active, 1ull);
  }
}

int64_t fit_cuda(const FitParams& p, void* stream, int device) {
  require_cuda("fit_cuda");
  check_fit_params(p);
  if (p.num_faces == 0) return 0;
  DeviceGuard guard(device);
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  unsigned long long* counter = nullptr;
  AUPERF_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&counter), sizeof(*counter), s));
  AUPERF_CUDA_CHECK(cudaMemsetAsync(counter, 0, sizeof(*counter), s));
  const unsigned blocks =
      static_cast<unsigned>((p.num_faces + kFitWarpsPerBlock - 1) / kFitWarpsPerBlock);
  fit_kernel<<<blocks, 32 * kFitWarpsPerBlock, 0, s>>>(p, counter);
  const cudaError_t launched = cudaGetLastError();
  unsigned long long host = 0;
  if (launched == cudaSuccess) {
    AUPERF_CUDA_CHECK(cudaMemcpyAsync(&host, counter, sizeof(host), cudaMemcpyDeviceToHost, s));
  }
  AUPERF_CUDA_CHECK(cudaFreeAsync(counter, s));  // freed on the launch path and on failure
  cuda_check(launched, "fit_kernel", __FILE__, __LINE__);
  AUPERF_CUDA_CHECK(cudaStreamSynchronize(s));
  return static_cast<int64_t>(host);
}

}  // namespace auperf
