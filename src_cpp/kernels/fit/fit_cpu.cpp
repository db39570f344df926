// CPU launcher: faces in parallel chunks, each face's row stepped in one loop (maths in
// fit_body.h). A face's result does not depend on the chunking, so any thread count gives
// the same bits.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common/parallel.h"
#include "kernels/fit/fit.h"
#include "kernels/fit/fit_body.h"

namespace auperf {
namespace {

// Elements a thread should have before another one is started (a thread costs tens of us).
constexpr int64_t kMinElementsPerThread = 32768;

// Largest of non-negative, non-NaN floats through their bit patterns, which order like the
// values: an integer max, so the row loop vectorises (a float max reduction would not without
// -ffast-math). Gives the same value as the CUDA path's fmaxf reduction.
inline int32_t float_bits(float x) {
  int32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  return bits;
}

inline float bits_float(int32_t bits) {
  float x;
  std::memcpy(&x, &bits, sizeof(x));
  return x;
}

// Steps face i if it is active; the pointers of one row never alias (the wrapper passes
// distinct arrays), so they are restrict-qualified for the vectoriser.
void fit_face(const FitParams& p, int64_t i) {
  if (!p.active[i]) return;
  const int64_t dim = p.dim;
  float* AUPERF_RESTRICT x = p.params + i * dim;
  const float* AUPERF_RESTRICT g = p.grads + i * dim;
  float* AUPERF_RESTRICT m = p.m + i * dim;
  float* AUPERF_RESTRICT v = p.v + i * dim;
  int finite = 1;
  for (int64_t d = 0; d < dim; ++d) finite &= fit_finite(g[d], x[d]) ? 1 : 0;
  if (!finite) {
    fit_face_reject(p, i);
    return;
  }
  const FitFace f = fit_face_begin(p, i);
  const float beta1 = p.beta1, beta2 = p.beta2, eps = p.eps, lower = p.lower, upper = p.upper;
  int32_t max_bits = 0;
  for (int64_t d = 0; d < dim; ++d) {
    float xd = x[d], md = m[d], vd = v[d];
    const float dx = fit_update(xd, md, vd, g[d], f, beta1, beta2, eps, lower, upper);
    x[d] = xd;
    m[d] = md;
    v[d] = vd;
    const int32_t bits = float_bits(dx);
    max_bits = bits > max_bits ? bits : max_bits;
  }
  fit_face_end(p, i, f.t, fit_decide(p, i, f.t, bits_float(max_bits)));
}

}  // namespace

int64_t fit_cpu(const FitParams& params) {
  check_fit_params(params);
  const int64_t per_thread = std::max<int64_t>(1, kMinElementsPerThread / params.dim);
  parallel_for(params.num_faces, [&](int64_t begin, int64_t end) {
    const FitParams p = params;
    for (int64_t i = begin; i < end; ++i) fit_face(p, i);
  }, per_thread);
  int64_t still = 0;
  for (int64_t i = 0; i < params.num_faces; ++i) still += params.active[i] ? 1 : 0;
  return still;
}

}  // namespace auperf
