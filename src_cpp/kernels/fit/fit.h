// One step of projected Adam for a batch of independent fits (one parameter vector per face),
// with the per-face convergence test in the same pass.
//
// Convention: params, grads, m, v are (N, D) float32, C-contiguous; step (N,) int32 counts the
// iterations each face has taken; active (N,) uint8 (numpy bool or uint8), 1 = still fitting.
// For each face i with active[i] != 0:
//   - if any grads[i, :] or params[i, :] is not finite, nothing is updated: active[i] = 0 and
//     status[i] = kFitNonFinite (params, m, v, step, prev_loss keep their values);
//   - otherwise t = max(step[i], 0) + 1 (saturating at 2^31 - 1) is written to step[i] and,
//     for every d,
//       m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2,
//       mhat = m / (1 - b1^t),  vhat = v / (1 - b2^t),
//       x' = min(max(x - lr_i mhat / (sqrt(vhat) + eps), lower), upper);
//     then, in this order, the face stops (active[i] = 0) with the first rule that holds:
//       kFitConvergedParam  tol_param > 0 and max_d |x' - x| <= tol_param,
//       kFitConvergedLoss   tol_loss > 0, loss given, t > 1 and
//                           |prev_loss - loss| <= tol_loss * max(|prev_loss|, 1e-12),
//       kFitMaxIterations   max_iterations > 0 and t >= max_iterations;
//     else status[i] = kFitRunning. prev_loss[i] = loss[i] afterwards (when loss is given).
// An update that is undefined (NaN: only when m and v both overflow float32, |g| ~ 1e37) leaves
// that parameter where it was. The (N, D) arrays must not overlap (the wrapper checks).
// Faces with active[i] == 0 are not read beyond that flag and nothing of theirs is written.
// b1^t and b2^t are computed in float64 by repeated squaring (the same on host and device);
// every other operation is one IEEE float32 operation, unfused, so that CPU and CUDA agree bit
// for bit.
#pragma once

#include <cstdint>

namespace auperf {

enum FitStatus : int8_t {
  kFitRunning = 0,         // still fitting after this step
  kFitConvergedParam = 1,  // largest parameter change <= tol_param
  kFitConvergedLoss = 2,   // relative loss change <= tol_loss
  kFitMaxIterations = 3,   // step reached max_iterations
  kFitNonFinite = 4,       // a gradient or parameter was NaN or infinite: stopped, not updated
};

struct FitParams {
  float* params;             // (N, D) in/out
  const float* grads;        // (N, D)
  float* m;                  // (N, D) in/out, first moments
  float* v;                  // (N, D) in/out, second moments
  int32_t* step;             // (N,) in/out, iterations taken
  uint8_t* active;           // (N,) in/out, 1 = still fitting
  int8_t* status;            // (N,) out (FitStatus) or nullptr
  const float* lr_per_face;  // (N,) or nullptr: then lr is used for every face
  float lr;                  // > 0 (used when lr_per_face is nullptr)
  const float* loss;         // (N,) or nullptr
  float* prev_loss;          // (N,) in/out; nullptr iff loss is nullptr
  int64_t num_faces;         // N >= 0
  int64_t dim;               // D >= 1
  float beta1;               // in [0, 1)
  float beta2;               // in [0, 1)
  float eps;                 // > 0
  float lower;               // projection box [lower, upper], lower < upper
  float upper;
  float tol_param;           // >= 0; 0 disables the parameter-change rule
  float tol_loss;            // >= 0; 0 disables the loss rule
  int32_t max_iterations;    // >= 1, or 0 for no cap
};

// Checks the scalar settings and sizes (host-side values only).
void check_fit_params(const FitParams& p);
// Both return the number of faces with active != 0 after the step.
int64_t fit_cpu(const FitParams& p);
int64_t fit_cuda(const FitParams& p, void* stream, int device);

}  // namespace auperf
