#include <string>

#include "common/cuda_api.h"
#include "common/cuda_check.cuh"

namespace auperf {

bool cuda_compiled() { return true; }

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver"/"no device" error
    return 0;
  }
  return n;
}

int cuda_runtime_version() {
  int v = 0;
  if (cudaRuntimeGetVersion(&v) != cudaSuccess) {
    cudaGetLastError();
    return CUDART_VERSION;
  }
  return v;
}

int cuda_driver_version() {
  int v = 0;
  if (cudaDriverGetVersion(&v) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return v;
}

void require_cuda(const char* what) {
  if (cuda_device_count() == 0) {
    throw CudaUnavailableError(std::string(what) + ": no CUDA device is visible");
  }
}

}  // namespace auperf
