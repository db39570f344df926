// The maths of one projected Adam step, shared by the CPU loop and the CUDA kernel (see fit.h).
#pragma once

#include <cmath>
#include <cstdint>

#include "common/macros.h"
#include "kernels/fit/fit.h"

namespace auperf {

// Single float32 operations with round-to-nearest and no contraction into FMA, so the device
// computes exactly what the host computes (the host build targets x86-64-v2, which has no FMA).
AUPERF_HD inline float fit_mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

AUPERF_HD inline float fit_add(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

AUPERF_HD inline double fit_dmul(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

// beta^t for t >= 1 by repeated squaring in float64 (no pow: host and device libm may differ).
AUPERF_HD inline double fit_power(double beta, int32_t t) {
  double result = 1.0;
  double base = beta;
  while (t > 0) {
    if (t & 1) result = fit_dmul(result, base);
    base = fit_dmul(base, base);
    t >>= 1;
  }
  return result;
}

// What one face needs for its step: the new iteration count, its learning rate and the bias
// corrections 1 - b1^t and 1 - b2^t (in (0, 1], rounded to float32 once).
struct FitFace {
  int32_t t;
  float lr;
  float c1;
  float c2;
};

AUPERF_HD inline FitFace fit_face_begin(const FitParams& p, int64_t i) {
  FitFace f;
  const int32_t taken = p.step[i];
  const int32_t kMaxSteps = 2147483647;  // the count saturates instead of overflowing
  f.t = taken >= kMaxSteps ? kMaxSteps : (taken > 0 ? taken : 0) + 1;
  f.lr = p.lr_per_face ? p.lr_per_face[i] : p.lr;
  f.c1 = static_cast<float>(1.0 - fit_power(static_cast<double>(p.beta1), f.t));
  f.c2 = static_cast<float>(1.0 - fit_power(static_cast<double>(p.beta2), f.t));
  return f;
}

// True when element (i, d) can be stepped: finite gradient and parameter.
AUPERF_HD inline bool fit_finite(float g, float x) {
#if defined(__CUDA_ARCH__)
  return isfinite(g) && isfinite(x);
#else
  return std::isfinite(g) && std::isfinite(x);
#endif
}

// Adam update + projection of one element, in place on the values x, m, v; returns |x' - x|.
// Scalars only (no pointers), so the CPU row loop vectorises. The box is applied with selects
// that send an undefined step (NaN, possible only when m and v both overflow float32) to the
// old value, so NaN never reaches the parameters.
AUPERF_HD inline float fit_update(float& x, float& m, float& v, float g, const FitFace& f,
                                  float beta1, float beta2, float eps, float lower, float upper) {
  m = fit_add(fit_mul(beta1, m), fit_mul(1.0f - beta1, g));
  v = fit_add(fit_mul(beta2, v), fit_mul(1.0f - beta2, fit_mul(g, g)));
  const float mhat = m / f.c1;
  const float vhat = v / f.c2;
  const float stepped = fit_add(x, -fit_mul(f.lr, mhat / fit_add(sqrtf(vhat), eps)));
  const float defined = stepped == stepped ? stepped : x;
  const float above = defined > lower ? defined : lower;
  const float projected = above < upper ? above : upper;
  const float dx = fabsf(fit_add(projected, -x));
  x = projected;
  return dx;
}

// The convergence decision of face i after its update (max_dx = max_d |x' - x|).
AUPERF_HD inline int8_t fit_decide(const FitParams& p, int64_t i, int32_t t, float max_dx) {
  if (p.tol_param > 0.0f && max_dx <= p.tol_param) return kFitConvergedParam;
  if (p.tol_loss > 0.0f && p.loss != nullptr && t > 1) {
    const float prev = p.prev_loss[i];
    const float change = fabsf(fit_add(prev, -p.loss[i]));
    if (change <= fit_mul(p.tol_loss, fmaxf(fabsf(prev), 1e-12f))) return kFitConvergedLoss;
  }
  if (p.max_iterations > 0 && t >= p.max_iterations) return kFitMaxIterations;
  return kFitRunning;
}

// Writes the per-face state of face i after its update; returns 1 if it is still active.
AUPERF_HD inline int fit_face_end(const FitParams& p, int64_t i, int32_t t, int8_t status) {
  p.step[i] = t;
  if (p.loss != nullptr) p.prev_loss[i] = p.loss[i];
  if (p.status != nullptr) p.status[i] = status;
  const int still = status == kFitRunning ? 1 : 0;
  p.active[i] = static_cast<uint8_t>(still);
  return still;
}

// A face with a non-finite gradient or parameter: stopped, nothing else written.
AUPERF_HD inline void fit_face_reject(const FitParams& p, int64_t i) {
  p.active[i] = 0;
  if (p.status != nullptr) p.status[i] = kFitNonFinite;
}

}  // namespace auperf
