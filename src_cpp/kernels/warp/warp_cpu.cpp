// CPU launcher: tiles of all faces in parallel chunks, maths in warp_body.h. Row segments whose
// taps all lie inside the frame take the SSE4.1 loop (warp_cpu_simd.h); the others locate every
// pixel's taps, then sample (with the border) and store. On CPUs with AVX2 the inside segments
// take the AVX2 loop instead (chosen at run time; the build targets x86-64-v2).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <utility>
#include <vector>

#include "common/parallel.h"
#include "kernels/warp/warp.h"
#include "kernels/warp/warp_body.h"
#include "kernels/warp/warp_cpu_simd.h"

namespace auperf {
namespace {

// The crop is walked in tiles of kTileRows x kTileCols pixels, the work items of the threads.
// Of the shapes tried on the warp benchmark (4-32 rows, 16-224 columns) this one was fastest
// for upright and rolled faces alike; narrower tiles pay the per-segment checks more often.
constexpr int64_t kTileRows = 8;
constexpr int64_t kTileCols = 128;

// The AVX2 loop runs where the CPU has AVX2, unless AUPERF_WARP_NO_AVX2 is set (the tests use
// it to check that both loops give identical bits).
bool use_avx2() {
#if defined(AUPERF_WARP_AVX2)
  static const bool enabled = __builtin_cpu_supports("avx2") && !std::getenv("AUPERF_WARP_NO_AVX2");
  return enabled;
#else
  return false;
#endif
}

template <int DType, int Layout>
void warp_segment_scalar(const WarpParams& p, const double* inv, const uint8_t* frame, int64_t n,
                         int64_t y, int64_t x_begin, int64_t x_end) {
  for (int64_t x = x_begin; x < x_end; ++x) {
    double sx, sy;
    int32_t x0, y0;
    float ax, ay, v[3];
    source_point(inv, x, y, &sx, &sy);
    const int tap_case = locate(sx, sy, p.width, p.height, &x0, &y0, &ax, &ay);
    sample(p, frame, tap_case, x0, y0, ax, ay, v);
    store_pixel<DType, Layout>(p, n, y, x, v);
  }
}

#if defined(AUPERF_WARP_SIMD)
// Narrows [*lo, *hi) to the x where lower <= slope * x + offset < upper (a linear coordinate).
void clip_linear(double slope, double offset, double lower, double upper, double* lo, double* hi) {
  if (slope == 0.0) {
    if (!(offset >= lower && offset < upper)) *hi = *lo;
    return;
  }
  double a = (lower - offset) / slope, b = (upper - offset) / slope;
  if (slope < 0.0) std::swap(a, b);
  *lo = std::max(*lo, a);
  *hi = std::min(*hi, b);
}

// The sub-range of [x_begin, x_end) whose taps lie inside the frame with a spare row below
// (what segment_inside checks), estimated from the linear source coordinates, shrunk by a pixel
// on each side against rounding, then confirmed with segment_inside. Empty when none is.
void inside_span(const WarpParams& p, const double* inv, int64_t y, int64_t x_begin,
                 int64_t x_end, int64_t* lo, int64_t* hi) {
  double a = static_cast<double>(x_begin), b = static_cast<double>(x_end);
  const double yd = static_cast<double>(y);
  clip_linear(inv[0], inv[1] * yd + inv[2], 0.0, static_cast<double>(p.width - 1), &a, &b);
  clip_linear(inv[3], inv[4] * yd + inv[5], 0.0, static_cast<double>(p.height - 2), &a, &b);
  *lo = static_cast<int64_t>(std::ceil(a)) + 1;
  *hi = static_cast<int64_t>(std::floor(b)) - 1;
  if (!(*lo < *hi) || !segment_inside(p, inv, y, *lo, *hi)) *lo = *hi = x_begin;
}

template <int DType, int Layout>
void warp_segment_simd(const WarpParams& p, const double* inv, const uint8_t* frame, int64_t n,
                       int64_t y, int64_t x_begin, int64_t x_end) {
#if defined(AUPERF_WARP_AVX2)
  if (use_avx2()) {
    warp_segment_inside_avx2<DType, Layout>(p, inv, frame, n, y, x_begin, x_end);
    return;
  }
#endif
  warp_segment_inside_simd<DType, Layout>(p, inv, frame, n, y, x_begin, x_end);
}
#endif

// One row segment: the SIMD loop where the taps are inside the frame, the scalar loop (with the
// border) elsewhere. Both compute the same bits, so where the split falls does not matter.
template <int DType, int Layout>
void warp_segment(const WarpParams& p, const double* inv, const uint8_t* frame, int64_t n,
                  int64_t y, int64_t x_begin, int64_t x_end) {
#if defined(AUPERF_WARP_SIMD)
  if (segment_inside(p, inv, y, x_begin, x_end)) {
    warp_segment_simd<DType, Layout>(p, inv, frame, n, y, x_begin, x_end);
    return;
  }
  int64_t lo, hi;
  inside_span(p, inv, y, x_begin, x_end, &lo, &hi);
  if (lo < hi) {
    warp_segment_scalar<DType, Layout>(p, inv, frame, n, y, x_begin, lo);
    warp_segment_simd<DType, Layout>(p, inv, frame, n, y, lo, hi);
    warp_segment_scalar<DType, Layout>(p, inv, frame, n, y, hi, x_end);
    return;
  }
#endif
  warp_segment_scalar<DType, Layout>(p, inv, frame, n, y, x_begin, x_end);
}

template <int DType, int Layout>
void warp_tiles(const WarpParams& params, const std::vector<double>& inverse) {
  const int64_t tile_rows = (params.out_height + kTileRows - 1) / kTileRows;
  // About 32k output pixels per thread at least.
  const int64_t min_items = 1 + (1 << 15) / (kTileRows * params.out_width);
  parallel_for(params.num_faces * tile_rows, [&](int64_t begin, int64_t end) {
    // A private copy: the compiler then knows stores to the output cannot change the
    // parameters, and keeps scale, bias and sizes in registers.
    const WarpParams p = params;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / tile_rows;
      const int64_t y_begin = (item % tile_rows) * kTileRows;
      const int64_t y_end = std::min(p.out_height, y_begin + kTileRows);
      const double* inv = inverse.data() + n * 6;
      const uint8_t* frame = p.frames + p.frame_index[n] * p.frame_stride;
      for (int64_t x_begin = 0; x_begin < p.out_width; x_begin += kTileCols) {
        const int64_t x_end = std::min(p.out_width, x_begin + kTileCols);
        for (int64_t y = y_begin; y < y_end; ++y) {
          warp_segment<DType, Layout>(p, inv, frame, n, y, x_begin, x_end);
        }
      }
    }
  }, min_items);
}

template <int DType>
void warp_layout(const WarpParams& p, const std::vector<double>& inverse) {
  if (p.layout == kWarpNCHW) {
    warp_tiles<DType, kWarpNCHW>(p, inverse);
  } else {
    warp_tiles<DType, kWarpNHWC>(p, inverse);
  }
}

}  // namespace

const char* warp_cpu_path() {
#if defined(AUPERF_WARP_SIMD)
  return use_avx2() ? "avx2" : "sse4.1";
#else
  return "scalar";
#endif
}

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
