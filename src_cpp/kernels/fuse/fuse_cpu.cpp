// CPU launcher: blocks of faces in parallel chunks, maths in fuse_body.h. Views are summed in
// the same order as fuse_one (the CUDA path), so both give the same means.
#include <algorithm>
#include <vector>

#include "common/parallel.h"
#include "kernels/fuse/fuse.h"
#include "kernels/fuse/fuse_body.h"

namespace auperf {
namespace {

// Faces are taken in blocks of about kBlock values; the view sum runs AU by AU per face, then
// the sigmoid and the thresholding run over the whole block as flat, vectorised loops.
constexpr int64_t kBlock = 1024;

template <int DType>
void fuse_all(const FuseParams& params) {
  const int64_t labels = params.num_labels;
  const int64_t faces_per_block = std::max<int64_t>(1, kBlock / labels);
  const int64_t block_values = faces_per_block * labels;
  // Thresholds tiled over a block, so the flat loop needs no index arithmetic.
  std::vector<float> thresholds(static_cast<size_t>(block_values));
  for (int64_t i = 0; i < block_values; ++i) thresholds[i] = threshold_of(params, i % labels);
  const int64_t blocks = (params.num_faces + faces_per_block - 1) / faces_per_block;
  parallel_for(blocks, [&](int64_t begin, int64_t end) {
    const FuseParams p = params;
    const float inv_views = 1.0f / static_cast<float>(p.num_views);
    std::vector<float> mean(static_cast<size_t>(block_values));
    const float* thr = thresholds.data();
    for (int64_t b = begin; b < end; ++b) {
      const int64_t n0 = b * faces_per_block;
      const int64_t n1 = std::min(p.num_faces, n0 + faces_per_block);
      const int64_t count = (n1 - n0) * labels;
      float* m = mean.data();
      for (int64_t n = n0; n < n1; ++n) {
        float* row = m + (n - n0) * labels;
        for (int64_t l = 0; l < labels; ++l) row[l] = 0.0f;
        for (int64_t v = 0; v < p.num_views; ++v) {
          for (int64_t l = 0; l < labels; ++l) row[l] += view_share<DType>(p, n, v, l, inv_views);
        }
      }
      float* out_prob = p.probabilities + n0 * labels;
      uint8_t* out_active = p.active + n0 * labels;
      for (int64_t i = 0; i < count; ++i) out_prob[i] = sigmoid_f32(m[i]);
      for (int64_t i = 0; i < count; ++i) out_active[i] = is_active(out_prob[i], thr[i]);
    }
  }, /*min_per_thread=*/16);
}

}  // namespace

void fuse_cpu(const FuseParams& p) {
  check_fuse_params(p, /*host_buffers=*/true);
  if (p.dtype == kFuseFloat32) {
    fuse_all<kFuseFloat32>(p);
  } else {
    fuse_all<kFuseFloat16>(p);
  }
}

}  // namespace auperf
