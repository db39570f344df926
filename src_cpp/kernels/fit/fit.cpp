#include "kernels/fit/fit.h"

#include <cmath>
#include <string>

#include "common/errors.h"

namespace auperf {

namespace {

void require_range(bool ok, const char* name, float value, const char* expected) {
  if (!ok) {
    throw ValueRangeError(std::string(name) + ": got " + std::to_string(value) + ", expected " +
                          expected);
  }
}

}  // namespace

void check_fit_params(const FitParams& p) {
  if (p.num_faces < 0 || p.dim < 1) {
    throw ShapeError("params: expected (N, D) with D >= 1, got (" + std::to_string(p.num_faces) +
                     ", " + std::to_string(p.dim) + ")");
  }
  if ((p.loss == nullptr) != (p.prev_loss == nullptr)) {
    throw ValueRangeError("loss/prev_loss: give both or neither");
  }
  if (p.lr_per_face == nullptr) {
    require_range(std::isfinite(p.lr) && p.lr > 0.0f, "lr", p.lr, "a finite value > 0");
  }
  require_range(p.beta1 >= 0.0f && p.beta1 < 1.0f, "beta1", p.beta1, "a value in [0, 1)");
  require_range(p.beta2 >= 0.0f && p.beta2 < 1.0f, "beta2", p.beta2, "a value in [0, 1)");
  require_range(std::isfinite(p.eps) && p.eps > 0.0f, "eps", p.eps, "a finite value > 0");
  require_range(p.lower < p.upper, "lower/upper", p.lower, "lower < upper");
  require_range(std::isfinite(p.tol_param) && p.tol_param >= 0.0f, "tol_param", p.tol_param,
                "a finite value >= 0");
  require_range(std::isfinite(p.tol_loss) && p.tol_loss >= 0.0f, "tol_loss", p.tol_loss,
                "a finite value >= 0");
  if (p.tol_loss > 0.0f && p.loss == nullptr) {
    throw ValueRangeError("tol_loss: " + std::to_string(p.tol_loss) +
                          " > 0 needs loss and prev_loss");
  }
  if (p.max_iterations < 0) {
    throw ValueRangeError("max_iterations: got " + std::to_string(p.max_iterations) +
                          ", expected >= 1 (or 0 for no cap)");
  }
}

}  // namespace auperf
