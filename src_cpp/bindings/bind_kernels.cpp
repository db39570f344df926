// Bindings of the kernels. Order in every binding (nvdiffrast's): check inputs, check shapes
// with messages naming the value, extract sizes, (outputs are allocated by the Python wrapper),
// release the GIL, launch.
//
// CPU entry points take NumPy arrays. CUDA entry points take raw device pointers (integers)
// that the Python wrapper read from __cuda_array_interface__ / DLPack, plus a stream handle.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "common/errors.h"
#include "kernels/fit/fit.h"
#include "kernels/fuse/fuse.h"
#include "kernels/similarity/similarity.h"
#include "kernels/warp/warp.h"

namespace py = pybind11;

namespace {

std::string shape_string(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    if (i) s += ", ";
    s += std::to_string(a.shape(i));
  }
  if (a.ndim() == 1) s += ",";
  return s + ")";
}

template <typename T>
void require_dtype(const py::array& a, const char* name, const char* expected) {
  if (!a.dtype().is(py::dtype::of<T>())) {
    throw auperf::DTypeError(std::string(name) + ": expected " + expected + ", got " +
                             std::string(py::str(a.dtype())));
  }
}

void require_contiguous(const py::array& a, const char* name) {
  if (!(a.flags() & py::array::c_style)) {
    throw auperf::ShapeError(std::string(name) + ": expected a C-contiguous array");
  }
}

void require_ndim(const py::array& a, py::ssize_t ndim, const char* name, const char* expected) {
  if (a.ndim() != ndim) {
    throw auperf::ShapeError(std::string(name) + ": expected shape " + expected + ", got " +
                             shape_string(a));
  }
}

py::tuple similarity_cpu(const py::array& points, const py::array& tmpl) {
  require_dtype<double>(points, "points", "float64");
  require_dtype<double>(tmpl, "template", "float64");
  require_ndim(points, 3, "points", "(N, K, 2)");
  require_ndim(tmpl, 2, "template", "(K, 2)");
  require_contiguous(points, "points");
  require_contiguous(tmpl, "template");
  if (points.shape(2) != 2 || tmpl.shape(1) != 2 || tmpl.shape(0) != points.shape(1)) {
    throw auperf::ShapeError("points/template: expected (N, K, 2) and (K, 2), got " +
                             shape_string(points) + " and " + shape_string(tmpl));
  }
  const int64_t n = points.shape(0);
  py::array_t<double> matrices({n, int64_t{2}, int64_t{3}});
  py::array_t<int8_t> status({n});
  auperf::SimilarityParams p{static_cast<const double*>(points.data()),
                             static_cast<const double*>(tmpl.data()),
                             n,
                             points.shape(1),
                             matrices.mutable_data(),
                             status.mutable_data()};
  {
    py::gil_scoped_release release;
    auperf::similarity_cpu(p);
  }
  return py::make_tuple(matrices, status);
}

void similarity_cuda(uintptr_t points, uintptr_t tmpl, int64_t n, int64_t k, uintptr_t matrices,
                     uintptr_t status, uintptr_t stream, int device) {
  auperf::SimilarityParams p{reinterpret_cast<const double*>(points),
                             reinterpret_cast<const double*>(tmpl),
                             n,
                             k,
                             reinterpret_cast<double*>(matrices),
                             reinterpret_cast<int8_t*>(status)};
  py::gil_scoped_release release;
  auperf::similarity_cuda(p, reinterpret_cast<void*>(stream), device);
}

void fill_warp_options(auperf::WarpParams& p, const std::array<int, 3>& channel_map,
                       const std::array<float, 3>& scale, const std::array<float, 3>& bias,
                       const std::array<float, 3>& border, int dtype, int layout) {
  for (int c = 0; c < 3; ++c) {
    p.channel_map[c] = channel_map[c];
    p.scale[c] = scale[c];
    p.bias[c] = bias[c];
    p.border[c] = border[c];
  }
  p.dtype = dtype;
  p.layout = layout;
}

void warp_cpu(const py::array& frames, const py::array& matrices, const py::array& frame_index,
              py::array& out, const std::array<int, 3>& channel_map,
              const std::array<float, 3>& scale, const std::array<float, 3>& bias,
              const std::array<float, 3>& border, int dtype, int layout) {
  require_dtype<uint8_t>(frames, "frames", "uint8");
  require_ndim(frames, 4, "frames", "(B, H, W, 3)");
  if (frames.shape(3) != 3) {
    throw auperf::ShapeError("frames: expected 3 channels (B, H, W, 3), got " + shape_string(frames));
  }
  if (frames.strides(3) != 1 || frames.strides(2) != 3 || frames.strides(1) <= 0 ||
      frames.strides(0) < 0) {
    throw auperf::ShapeError("frames: expected interleaved pixels (channel stride 1, pixel stride 3)");
  }
  require_dtype<double>(matrices, "matrices", "float64");
  require_ndim(matrices, 3, "matrices", "(N, 2, 3)");
  require_contiguous(matrices, "matrices");
  require_dtype<int64_t>(frame_index, "frame_index", "int64");
  require_ndim(frame_index, 1, "frame_index", "(N,)");
  require_contiguous(frame_index, "frame_index");
  require_contiguous(out, "out");
  if (!out.writeable()) throw auperf::ShapeError("out: the array is read-only");
  const int64_t n = matrices.shape(0);
  if (matrices.shape(1) != 2 || matrices.shape(2) != 3 || frame_index.shape(0) != n) {
    throw auperf::ShapeError("matrices/frame_index: expected (N, 2, 3) and (N,), got " +
                             shape_string(matrices) + " and " + shape_string(frame_index));
  }
  require_ndim(out, 4, "out", "(N, 3, Ho, Wo) or (N, Ho, Wo, 3)");
  const int64_t ho = layout == auperf::kWarpNCHW ? out.shape(2) : out.shape(1);
  const int64_t wo = layout == auperf::kWarpNCHW ? out.shape(3) : out.shape(2);
  const int64_t ch = layout == auperf::kWarpNCHW ? out.shape(1) : out.shape(3);
  if (out.shape(0) != n || ch != 3) {
    throw auperf::ShapeError("out: shape " + shape_string(out) + " does not match " +
                             std::to_string(n) + " faces with 3 channels");
  }
  const int expected_itemsize = dtype == auperf::kWarpFloat32 ? 4 : (dtype == auperf::kWarpFloat16 ? 2 : 1);
  if (out.itemsize() != expected_itemsize) {
    throw auperf::DTypeError("out: item size " + std::to_string(out.itemsize()) +
                             " does not match the requested dtype");
  }
  auperf::WarpParams p{};
  p.frames = static_cast<const uint8_t*>(frames.data());
  p.num_frames = frames.shape(0);
  p.height = frames.shape(1);
  p.width = frames.shape(2);
  p.row_stride = frames.strides(1);
  p.frame_stride = p.num_frames > 1 ? frames.strides(0) : p.row_stride * p.height;
  p.matrices = static_cast<const double*>(matrices.data());
  p.frame_index = static_cast<const int64_t*>(frame_index.data());
  p.num_faces = n;
  p.out_height = ho;
  p.out_width = wo;
  fill_warp_options(p, channel_map, scale, bias, border, dtype, layout);
  p.out = out.mutable_data();
  py::gil_scoped_release release;
  auperf::warp_cpu(p);
}

void warp_cuda(uintptr_t frames, int64_t num_frames, int64_t height, int64_t width,
               int64_t frame_stride, int64_t row_stride, uintptr_t matrices, uintptr_t frame_index,
               int64_t num_faces, uintptr_t out, int64_t out_height, int64_t out_width,
               const std::array<int, 3>& channel_map, const std::array<float, 3>& scale,
               const std::array<float, 3>& bias, const std::array<float, 3>& border, int dtype,
               int layout, uintptr_t stream, int device) {
  auperf::WarpParams p{};
  p.frames = reinterpret_cast<const uint8_t*>(frames);
  p.num_frames = num_frames;
  p.height = height;
  p.width = width;
  p.frame_stride = frame_stride;
  p.row_stride = row_stride;
  p.matrices = reinterpret_cast<const double*>(matrices);
  p.frame_index = reinterpret_cast<const int64_t*>(frame_index);
  p.num_faces = num_faces;
  p.out_height = out_height;
  p.out_width = out_width;
  fill_warp_options(p, channel_map, scale, bias, border, dtype, layout);
  p.out = reinterpret_cast<void*>(out);
  py::gil_scoped_release release;
  auperf::warp_cuda(p, reinterpret_cast<void*>(stream), device);
}

void fuse_cpu(const py::array& logits, const py::array& thresholds, py::array& probabilities,
              py::array& active) {
  int dtype;
  if (logits.dtype().is(py::dtype::of<float>())) {
    dtype = auperf::kFuseFloat32;
  } else if (logits.dtype().is(py::dtype("float16"))) {
    dtype = auperf::kFuseFloat16;
  } else {
    throw auperf::DTypeError("logits: expected float32 or float16, got " +
                             std::string(py::str(logits.dtype())));
  }
  require_ndim(logits, 3, "logits", "(N, V, L)");
  require_contiguous(logits, "logits");
  require_dtype<float>(thresholds, "thresholds", "float32");
  require_ndim(thresholds, 1, "thresholds", "(T,)");
  require_contiguous(thresholds, "thresholds");
  require_dtype<float>(probabilities, "probabilities", "float32");
  require_dtype<bool>(active, "active", "bool");
  require_contiguous(probabilities, "probabilities");
  require_contiguous(active, "active");
  const int64_t n = logits.shape(0), l = logits.shape(2);
  if (probabilities.ndim() != 2 || probabilities.shape(0) != n || probabilities.shape(1) != l ||
      active.ndim() != 2 || active.shape(0) != n || active.shape(1) != l) {
    throw auperf::ShapeError("probabilities/active: expected (N, L) = (" + std::to_string(n) +
                             ", " + std::to_string(l) + ")");
  }
  auperf::FuseParams p{logits.data(),
                       dtype,
                       n,
                       logits.shape(1),
                       l,
                       static_cast<const float*>(thresholds.data()),
                       thresholds.shape(0),
                       static_cast<float*>(probabilities.mutable_data()),
                       static_cast<uint8_t*>(active.mutable_data())};
  py::gil_scoped_release release;
  auperf::fuse_cpu(p);
}

void fuse_cuda(uintptr_t logits, int dtype, int64_t n, int64_t v, int64_t l, uintptr_t thresholds,
               int64_t num_thresholds, uintptr_t probabilities, uintptr_t active, uintptr_t stream,
               int device) {
  auperf::FuseParams p{reinterpret_cast<const void*>(logits),
                       dtype,
                       n,
                       v,
                       l,
                       reinterpret_cast<const float*>(thresholds),
                       num_thresholds,
                       reinterpret_cast<float*>(probabilities),
                       reinterpret_cast<uint8_t*>(active)};
  py::gil_scoped_release release;
  auperf::fuse_cuda(p, reinterpret_cast<void*>(stream), device);
}

void require_rows(const py::array& a, const char* name, int64_t n, int64_t d) {
  require_dtype<float>(a, name, "float32");
  require_contiguous(a, name);
  if (a.ndim() != 2 || a.shape(0) != n || a.shape(1) != d) {
    throw auperf::ShapeError(std::string(name) + ": expected shape (" + std::to_string(n) + ", " +
                             std::to_string(d) + "), got " + shape_string(a));
  }
}

void require_faces(const py::array& a, const char* name, int64_t n) {
  require_contiguous(a, name);
  if (a.ndim() != 1 || a.shape(0) != n) {
    throw auperf::ShapeError(std::string(name) + ": expected shape (" + std::to_string(n) +
                             ",), got " + shape_string(a));
  }
}

void require_writeable(const py::array& a, const char* name) {
  if (!a.writeable()) throw auperf::ShapeError(std::string(name) + ": the array is read-only");
}

// The arrays a fit step writes must not overlap each other or the gradients (C-contiguous, so
// each occupies one byte range).
void require_disjoint(const py::array& a, const char* name_a, const py::array& b,
                      const char* name_b) {
  const auto* pa = static_cast<const char*>(a.data());
  const auto* pb = static_cast<const char*>(b.data());
  if (a.nbytes() > 0 && b.nbytes() > 0 && pa < pb + b.nbytes() && pb < pa + a.nbytes()) {
    throw auperf::ShapeError(std::string(name_a) + "/" + name_b +
                             ": the arrays overlap in memory; pass distinct arrays");
  }
}

void fill_fit_settings(auperf::FitParams& p, float beta1, float beta2, float eps, float lower,
                       float upper, float tol_param, float tol_loss, int32_t max_iterations) {
  p.beta1 = beta1;
  p.beta2 = beta2;
  p.eps = eps;
  p.lower = lower;
  p.upper = upper;
  p.tol_param = tol_param;
  p.tol_loss = tol_loss;
  p.max_iterations = max_iterations;
}

int64_t fit_cpu(py::array& params, const py::array& grads, py::array& m, py::array& v,
                py::array& step, py::array& active, float lr,
                const std::optional<py::array>& lr_per_face, const std::optional<py::array>& loss,
                std::optional<py::array>& prev_loss, std::optional<py::array>& status, float beta1,
                float beta2, float eps, float lower, float upper, float tol_param, float tol_loss,
                int32_t max_iterations) {
  require_dtype<float>(params, "params", "float32");
  require_ndim(params, 2, "params", "(N, D)");
  const int64_t n = params.shape(0), d = params.shape(1);
  require_rows(params, "params", n, d);
  require_rows(grads, "grads", n, d);
  require_rows(m, "m", n, d);
  require_rows(v, "v", n, d);
  require_dtype<int32_t>(step, "step", "int32");
  require_faces(step, "step", n);
  if (!active.dtype().is(py::dtype::of<bool>()) && !active.dtype().is(py::dtype::of<uint8_t>())) {
    throw auperf::DTypeError("active: expected bool or uint8, got " +
                             std::string(py::str(active.dtype())));
  }
  require_faces(active, "active", n);
  for (auto [a, name] : {std::pair<py::array*, const char*>{&params, "params"}, {&m, "m"},
                         {&v, "v"}, {&step, "step"}, {&active, "active"}}) {
    require_writeable(*a, name);
  }
  require_disjoint(params, "params", grads, "grads");
  require_disjoint(params, "params", m, "m");
  require_disjoint(params, "params", v, "v");
  require_disjoint(m, "m", grads, "grads");
  require_disjoint(m, "m", v, "v");
  require_disjoint(v, "v", grads, "grads");
  auperf::FitParams p{};
  p.params = static_cast<float*>(params.mutable_data());
  p.grads = static_cast<const float*>(grads.data());
  p.m = static_cast<float*>(m.mutable_data());
  p.v = static_cast<float*>(v.mutable_data());
  p.step = static_cast<int32_t*>(step.mutable_data());
  p.active = static_cast<uint8_t*>(active.mutable_data());
  p.lr = lr;
  if (lr_per_face) {
    require_dtype<float>(*lr_per_face, "lr", "float32");
    require_faces(*lr_per_face, "lr", n);
    p.lr_per_face = static_cast<const float*>(lr_per_face->data());
  }
  if (loss) {
    require_dtype<float>(*loss, "loss", "float32");
    require_faces(*loss, "loss", n);
    p.loss = static_cast<const float*>(loss->data());
  }
  if (prev_loss) {
    require_dtype<float>(*prev_loss, "prev_loss", "float32");
    require_faces(*prev_loss, "prev_loss", n);
    require_writeable(*prev_loss, "prev_loss");
    p.prev_loss = static_cast<float*>(prev_loss->mutable_data());
  }
  if (status) {
    require_dtype<int8_t>(*status, "status", "int8");
    require_faces(*status, "status", n);
    require_writeable(*status, "status");
    p.status = static_cast<int8_t*>(status->mutable_data());
  }
  p.num_faces = n;
  p.dim = d;
  fill_fit_settings(p, beta1, beta2, eps, lower, upper, tol_param, tol_loss, max_iterations);
  py::gil_scoped_release release;
  return auperf::fit_cpu(p);
}

int64_t fit_cuda(uintptr_t params, uintptr_t grads, uintptr_t m, uintptr_t v, uintptr_t step,
                 uintptr_t active, int64_t n, int64_t d, float lr, uintptr_t lr_per_face,
                 uintptr_t loss, uintptr_t prev_loss, uintptr_t status, float beta1, float beta2,
                 float eps, float lower, float upper, float tol_param, float tol_loss,
                 int32_t max_iterations, uintptr_t stream, int device) {
  auperf::FitParams p{};
  p.params = reinterpret_cast<float*>(params);
  p.grads = reinterpret_cast<const float*>(grads);
  p.m = reinterpret_cast<float*>(m);
  p.v = reinterpret_cast<float*>(v);
  p.step = reinterpret_cast<int32_t*>(step);
  p.active = reinterpret_cast<uint8_t*>(active);
  p.lr = lr;
  p.lr_per_face = reinterpret_cast<const float*>(lr_per_face);
  p.loss = reinterpret_cast<const float*>(loss);
  p.prev_loss = reinterpret_cast<float*>(prev_loss);
  p.status = reinterpret_cast<int8_t*>(status);
  p.num_faces = n;
  p.dim = d;
  fill_fit_settings(p, beta1, beta2, eps, lower, upper, tol_param, tol_loss, max_iterations);
  py::gil_scoped_release release;
  return auperf::fit_cuda(p, reinterpret_cast<void*>(stream), device);
}

}  // namespace

void bind_kernels(py::module_& m) {
  m.def("similarity_cpu", &similarity_cpu, py::arg("points"), py::arg("template"),
        "(N,K,2) float64 points, (K,2) template -> ((N,2,3) src_to_dst matrices, (N,) int8 status)");
  m.def("similarity_cuda", &similarity_cuda, py::arg("points"), py::arg("template"), py::arg("n"),
        py::arg("k"), py::arg("matrices"), py::arg("status"), py::arg("stream"), py::arg("device"));
  m.def("warp_cpu", &warp_cpu, py::arg("frames"), py::arg("matrices"), py::arg("frame_index"),
        py::arg("out"), py::arg("channel_map"), py::arg("scale"), py::arg("bias"),
        py::arg("border"), py::arg("dtype"), py::arg("layout"));
  m.def("warp_cuda", &warp_cuda, py::arg("frames"), py::arg("num_frames"), py::arg("height"),
        py::arg("width"), py::arg("frame_stride"), py::arg("row_stride"), py::arg("matrices"),
        py::arg("frame_index"), py::arg("num_faces"), py::arg("out"), py::arg("out_height"),
        py::arg("out_width"), py::arg("channel_map"), py::arg("scale"), py::arg("bias"),
        py::arg("border"), py::arg("dtype"), py::arg("layout"), py::arg("stream"),
        py::arg("device"));
  m.def("fuse_cpu", &fuse_cpu, py::arg("logits"), py::arg("thresholds"), py::arg("probabilities"),
        py::arg("active"));
  m.def("fuse_cuda", &fuse_cuda, py::arg("logits"), py::arg("dtype"), py::arg("n"), py::arg("v"),
        py::arg("l"), py::arg("thresholds"), py::arg("num_thresholds"), py::arg("probabilities"),
        py::arg("active"), py::arg("stream"), py::arg("device"));
  m.def("fit_cpu", &fit_cpu, py::arg("params"), py::arg("grads"), py::arg("m"), py::arg("v"),
        py::arg("step"), py::arg("active"), py::arg("lr"), py::arg("lr_per_face"),
        py::arg("loss"), py::arg("prev_loss"), py::arg("status"), py::arg("beta1"),
        py::arg("beta2"), py::arg("eps"), py::arg("lower"), py::arg("upper"),
        py::arg("tol_param"), py::arg("tol_loss"), py::arg("max_iterations"),
        "One projected Adam step in place on (N, D) float32 arrays; returns faces still active");
  m.def("fit_cuda", &fit_cuda, py::arg("params"), py::arg("grads"), py::arg("m"), py::arg("v"),
        py::arg("step"), py::arg("active"), py::arg("n"), py::arg("d"), py::arg("lr"),
        py::arg("lr_per_face"), py::arg("loss"), py::arg("prev_loss"), py::arg("status"),
        py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("lower"), py::arg("upper"),
        py::arg("tol_param"), py::arg("tol_loss"), py::arg("max_iterations"), py::arg("stream"),
        py::arg("device"), "Device twin of fit_cpu (pointers, 0 = absent); syncs the stream");
}
