#include "kernels/similarity/similarity.h"

#include <string>

#include "common/errors.h"

namespace auperf {

void check_similarity_params(const SimilarityParams& p) {
  if (p.num_faces < 0) throw ShapeError("points: negative number of faces");
  if (p.num_points < 2) {
    throw ShapeError("points: expected at least 2 points per face, got K=" +
                     std::to_string(p.num_points));
  }
  if (p.num_faces > 0 && (!p.points || !p.template_ || !p.matrices || !p.status)) {
    throw ShapeError("similarity: null buffer");
  }
}

}  // namespace auperf
