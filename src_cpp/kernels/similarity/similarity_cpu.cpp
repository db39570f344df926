// CPU launcher: faces in parallel chunks, maths in similarity_body.h.
#include "common/parallel.h"
#include "kernels/similarity/similarity.h"
#include "kernels/similarity/similarity_body.h"

namespace auperf {

void similarity_cpu(const SimilarityParams& p) {
  check_similarity_params(p);
  const int64_t k = p.num_points;
  parallel_for(p.num_faces, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      p.status[n] = estimate_similarity_one(p.points + n * k * 2, p.template_, k, p.matrices + n * 6);
    }
  }, /*min_per_thread=*/1024);
}

}  // namespace auperf
