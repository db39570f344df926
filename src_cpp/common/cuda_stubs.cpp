// CPU-only build: every CUDA entry point exists and raises a typed "built without CUDA" error.
#include <string>

#include "common/cuda_api.h"
#include "common/errors.h"
#include "kernels/fit/fit.h"
#include "kernels/fuse/fuse.h"
#include "kernels/similarity/similarity.h"
#include "kernels/warp/warp.h"

namespace auperf {

bool cuda_compiled() { return false; }
int cuda_device_count() { return 0; }
int cuda_runtime_version() { return 0; }
int cuda_driver_version() { return 0; }

void require_cuda(const char* what) {
  throw CudaUnavailableError(std::string(what) +
                             ": auperf was built without CUDA (rebuild with AUPERF_WITH_CUDA=ON "
                             "on a machine with nvcc)");
}

// The kernels' CUDA launchers: each raises before touching any pointer.
void similarity_cuda(const SimilarityParams&, void*, int) { require_cuda("similarity_cuda"); }
void warp_cuda(const WarpParams&, void*, int) { require_cuda("warp_cuda"); }
void fuse_cuda(const FuseParams&, void*, int) { require_cuda("fuse_cuda"); }
int64_t fit_cuda(const FitParams&, void*, int) {
  require_cuda("fit_cuda");
  return 0;
}

}  // namespace auperf
