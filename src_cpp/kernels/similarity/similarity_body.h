// The maths of similarity estimation, shared by the CPU loop and the CUDA kernel.
#pragma once

#include <cmath>

#include "common/macros.h"
#include "kernels/similarity/similarity.h"

namespace auperf {

// Closed form of the 2D least-squares similarity: with centred source points u_k and centred
// template points v_k, the optimal s R = [[a, -b], [b, a]] where
//   a = sum(u . v) / sum|u|^2,  b = sum(u x v) / sum|u|^2   (u x v = u_x v_y - u_y v_x).
// This is the global minimiser over scaled proper rotations, which is what Umeyama's method
// with the reflection correction returns.
AUPERF_HD inline int8_t estimate_similarity_one(const double* AUPERF_RESTRICT pts,
                                                const double* AUPERF_RESTRICT tmpl, int64_t k_count,
                                                double* AUPERF_RESTRICT out) {
  double mpx = 0.0, mpy = 0.0, mqx = 0.0, mqy = 0.0;
  bool finite = true;
  for (int64_t k = 0; k < k_count; ++k) {
    const double px = pts[2 * k], py = pts[2 * k + 1];
    finite = finite && std::isfinite(px) && std::isfinite(py);
    mpx += px;
    mpy += py;
    mqx += tmpl[2 * k];
    mqy += tmpl[2 * k + 1];
  }
  const double nan = NAN;
  if (!finite) {
    for (int i = 0; i < 6; ++i) out[i] = nan;
    return kSimilarityNonFinite;
  }
  const double inv_k = 1.0 / static_cast<double>(k_count);
  mpx *= inv_k;
  mpy *= inv_k;
  mqx *= inv_k;
  mqy *= inv_k;
  double var = 0.0, dot = 0.0, cross = 0.0, spread = 0.0;
  for (int64_t k = 0; k < k_count; ++k) {
    const double ux = pts[2 * k] - mpx, uy = pts[2 * k + 1] - mpy;
    const double vx = tmpl[2 * k] - mqx, vy = tmpl[2 * k + 1] - mqy;
    var += ux * ux + uy * uy;
    dot += ux * vx + uy * vy;
    cross += ux * vy - uy * vx;
    spread += std::fabs(pts[2 * k]) + std::fabs(pts[2 * k + 1]);
  }
  // Coincident points: the spread of the source is negligible next to its magnitude.
  const double scale_ref = spread * inv_k + 1.0;
  if (!(var > 1e-18 * scale_ref * scale_ref)) {
    for (int i = 0; i < 6; ++i) out[i] = nan;
    return kSimilarityDegenerate;
  }
  const double a = dot / var, b = cross / var;
  out[0] = a;
  out[1] = -b;
  out[2] = mqx - (a * mpx - b * mpy);
  out[3] = b;
  out[4] = a;
  out[5] = mqy - (b * mpx + a * mpy);
  return kSimilarityOk;
}

}  // namespace auperf
