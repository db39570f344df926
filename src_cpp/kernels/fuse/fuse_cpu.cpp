// CPU launcher: faces in parallel chunks, maths in fuse_body.h.
#include "common/parallel.h"
#include "kernels/fuse/fuse.h"
#include "kernels/fuse/fuse_body.h"

namespace auperf {
namespace {

template <int DType>
void fuse_all(const FuseParams& p) {
  parallel_for(p.num_faces, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      for (int64_t l = 0; l < p.num_labels; ++l) fuse_one<DType>(p, n, l);
    }
  });
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
