// Host-side declarations of the CUDA runtime services the core uses. Implemented in
// cuda_runtime.cu when CUDA is compiled, and in cuda_stubs.cpp otherwise, so the rest of the
// core (and the bindings) never include CUDA headers.
#pragma once

#include <string>

namespace auperf {

bool cuda_compiled();
// Number of visible CUDA devices; 0 when built without CUDA, without a driver or without a GPU.
int cuda_device_count();
// Runtime version the core was linked with (e.g. 13000), 0 without CUDA.
int cuda_runtime_version();
// Driver version (e.g. 13000), 0 when no driver is present.
int cuda_driver_version();
// Throws CudaUnavailableError naming `what` when CUDA is not compiled or no device is visible.
void require_cuda(const char* what);

}  // namespace auperf
