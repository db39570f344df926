// CPU launcher: rows of all faces in parallel chunks, maths in warp_body.h. Rows whose taps all
// lie inside the frame take the SSE4.1 row loop (warp_cpu_simd.h); the others locate every
// pixel's taps, then sample (with the border) and store.
#include <vector>

#include "common/parallel.h"
#include "kernels/warp/warp.h"
#include "kernels/warp/warp_body.h"
#include "kernels/warp/warp_cpu_simd.h"

namespace auperf {
namespace {

template <int DType, int Layout>
void warp_rows(const WarpParams& params, const std::vector<double>& inverse) {
  parallel_for(params.num_faces * params.out_height, [&](int64_t begin, int64_t end) {
    // A private copy: the compiler then knows stores to the output cannot change the
    // parameters, and keeps scale, bias and sizes in registers.
    const WarpParams p = params;
    const int64_t w = p.out_width;
    std::vector<int32_t> xs(w), ys(w), cases(w);
    std::vector<float> axs(w), ays(w);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t n = r / p.out_height, y = r % p.out_height;
      const double* inv = inverse.data() + n * 6;
      const uint8_t* frame = p.frames + p.frame_index[n] * p.frame_stride;
#if defined(AUPERF_WARP_SIMD)
      if (row_inside(p, inv, y)) {
        warp_row_inside_simd<DType, Layout>(p, inv, frame, n, y);
        continue;
      }
#endif
      for (int64_t x = 0; x < w; ++x) {
        double sx, sy;
        source_point(inv, x, y, &sx, &sy);
        cases[x] = locate(sx, sy, p.width, p.height, &xs[x], &ys[x], &axs[x], &ays[x]);
      }
      for (int64_t x = 0; x < w; ++x) {
        float v[3];
        sample(p, frame, cases[x], xs[x], ys[x], axs[x], ays[x], v);
        store_pixel<DType, Layout>(p, n, y, x, v);
      }
    }
  });
}

template <int DType>
void warp_layout(const WarpParams& p, const std::vector<double>& inverse) {
  if (p.layout == kWarpNCHW) {
    warp_rows<DType, kWarpNCHW>(p, inverse);
  } else {
    warp_rows<DType, kWarpNHWC>(p, inverse);
  }
}

}  // namespace

void warp_cpu(const WarpParams& p) {
  check_warp_params(p, /*host_buffers=*/true);
  if (p.num_faces == 0) return;
  std::vector<double> inverse(static_cast<size_t>(p.num_faces) * 6);
  for (int64_t n = 0; n < p.num_faces; ++n) invert_affine(p.matrices + n * 6, &inverse[n * 6]);
  switch (p.dtype) {
    case kWarpFloat32: warp_layout<kWarpFloat32>(p, inverse); break;
    case kWarpFloat16: warp_layout<kWarpFloat16>(p, inverse); break;
    default: warp_layout<kWarpUInt8>(p, inverse); break;
  }
}

}  // namespace auperf
