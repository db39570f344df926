// Batched least-squares 2D similarity estimation (Umeyama without reflection).
//
// Convention: for each face n, finds M[n] = [s R | t] (2x3, row-major) minimising
// sum_k || s R p[n,k] + t - q[k] ||^2, where p are the face's points in source (frame) pixels
// and q the template in destination (crop) pixels. M maps source to destination (src_to_dst),
// as cv2.warpAffine expects. Pixel centres lie at integer coordinates.
#pragma once

#include <cstdint>

namespace auperf {

enum SimilarityStatus : int8_t {
  kSimilarityOk = 0,
  kSimilarityNonFinite = 1,  // a point holds NaN or Inf
  kSimilarityDegenerate = 2  // the points (nearly) coincide: scale undetermined
};

struct SimilarityParams {
  const double* points;    // (N, K, 2), contiguous
  const double* template_; // (K, 2), contiguous
  int64_t num_faces;       // N
  int64_t num_points;      // K >= 2
  double* matrices;        // (N, 2, 3) output, contiguous; NaN for faces that fail
  int8_t* status;          // (N,) output, SimilarityStatus
};

// Validates sizes, then runs on the CPU threads.
void similarity_cpu(const SimilarityParams& p);
// Same maths on the device; all pointers are device memory, `stream` a cudaStream_t.
void similarity_cuda(const SimilarityParams& p, void* stream, int device);

void check_similarity_params(const SimilarityParams& p);

}  // namespace auperf
