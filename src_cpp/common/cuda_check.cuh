// Turns CUDA errors into auperf::CudaError exceptions naming the call site and the kernel.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "common/errors.h"

namespace auperf {

inline void cuda_check(cudaError_t status, const char* what, const char* file, int line) {
  if (status != cudaSuccess) {
    throw CudaError(std::string(what) + " failed at " + file + ":" + std::to_string(line) + ": " +
                    cudaGetErrorName(status) + ": " + cudaGetErrorString(status));
  }
}

// Checks the launch of `kernel_name` (configuration errors surface here; asynchronous faults
// surface at the next synchronising call on the stream).
inline void cuda_check_launch(const char* kernel_name, const char* file, int line) {
  cuda_check(cudaGetLastError(), kernel_name, file, line);
}

// Makes `device` current for the scope and restores the caller's device afterwards.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    cuda_check(cudaGetDevice(&previous_), "cudaGetDevice", __FILE__, __LINE__);
    if (device != previous_) cuda_check(cudaSetDevice(device), "cudaSetDevice", __FILE__, __LINE__);
  }
  ~DeviceGuard() {
    int current = previous_;
    if (cudaGetDevice(&current) == cudaSuccess && current != previous_) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace auperf

#define AUPERF_CUDA_CHECK(call) ::auperf::cuda_check((call), #call, __FILE__, __LINE__)
#define AUPERF_CUDA_CHECK_LAUNCH(name) ::auperf::cuda_check_launch(name, __FILE__, __LINE__)
