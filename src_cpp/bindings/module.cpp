// auperf._core: module definition, build information and error translation.
//
// Nothing but the thin wrappers in auperf/ imports this module. C++ exceptions of the core
// become the auperf.errors class of the same name.
#include <pybind11/pybind11.h>

#include <string>

#include "common/cuda_api.h"
#include "common/errors.h"
#include "common/parallel.h"
#include "kernels/warp/warp.h"

namespace py = pybind11;

#ifndef AUPERF_VERSION
#define AUPERF_VERSION "0.0.0"
#endif
#ifndef AUPERF_COMPILER
#define AUPERF_COMPILER "unknown"
#endif

void bind_kernels(py::module_& m);

namespace {

[[noreturn]] void raise_typed(const char* name, const char* message) {
  py::object cls = py::module_::import("auperf.errors").attr(name);
  PyErr_SetString(cls.ptr(), message);
  throw py::error_already_set();
}

py::list split_archs(const std::string& archs) {
  py::list out;
  std::string item;
  for (char ch : archs) {
    if (ch == ',' || ch == ';') {
      if (!item.empty()) out.append(item);
      item.clear();
    } else {
      item.push_back(ch);
    }
  }
  if (!item.empty()) out.append(item);
  return out;
}

std::string version_string(int v) {
  if (v <= 0) return "";
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

py::dict build_info() {
  py::dict d;
  d["core_version"] = AUPERF_VERSION;
  d["compiler"] = AUPERF_COMPILER;
  const bool cuda = auperf::cuda_compiled();
  d["cuda_compiled"] = cuda;
#ifdef AUPERF_WITH_CUDA
  d["cuda_archs"] = split_archs(AUPERF_CUDA_ARCHS);
  d["cuda_compiler"] = std::string("NVIDIA ") + AUPERF_NVCC_VERSION;
#else
  d["cuda_archs"] = py::list();
  d["cuda_compiler"] = py::none();
#endif
  const std::string runtime = version_string(auperf::cuda_runtime_version());
  const std::string driver = version_string(auperf::cuda_driver_version());
  d["cuda_runtime_version"] = runtime.empty() ? py::object(py::none()) : py::object(py::str(runtime));
  d["cuda_driver_version"] = driver.empty() ? py::object(py::none()) : py::object(py::str(driver));
  d["cuda_device_count"] = auperf::cuda_device_count();
  d["num_threads"] = auperf::get_num_threads();
  d["warp_cpu_path"] = auperf::warp_cpu_path();
  return d;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "auperf compiled core: batched face warping, view fusion, similarity estimation";

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const auperf::ShapeError& e) {
      raise_typed("ShapeError", e.what());
    } catch (const auperf::DTypeError& e) {
      raise_typed("DTypeError", e.what());
    } catch (const auperf::ValueRangeError& e) {
      raise_typed("ValueRangeError", e.what());
    } catch (const auperf::IndexRangeError& e) {
      raise_typed("IndexRangeError", e.what());
    } catch (const auperf::NonFiniteError& e) {
      raise_typed("NonFiniteError", e.what());
    } catch (const auperf::SingularMatrixError& e) {
      raise_typed("SingularMatrixError", e.what());
    } catch (const auperf::CudaUnavailableError& e) {
      raise_typed("CudaUnavailableError", e.what());
    } catch (const auperf::CudaError& e) {
      raise_typed("CudaError", e.what());
    } catch (const auperf::Error& e) {
      raise_typed("AuperfError", e.what());
    }
  });

  m.def("build_info", &build_info, "What the core was compiled with and what the machine offers.");
  m.def("cuda_device_count", &auperf::cuda_device_count,
        "Visible CUDA devices; 0 without CUDA, driver or GPU (never raises).");
  m.def("get_num_threads", &auperf::get_num_threads, "Threads used by the CPU kernels.");
  m.def("set_num_threads", &auperf::set_num_threads, py::arg("n"),
        "Set the threads used by the CPU kernels (values < 1 mean 1).");
  bind_kernels(m);
}
