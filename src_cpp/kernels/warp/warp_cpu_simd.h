// SIMD forms of the warp body (warp_body.h) for the row segments of the CPU launcher whose taps
// all lie inside the frame, which is nearly every pixel of a face crop: an SSE4.1 loop (one
// pixel per 128-bit vector, the build's baseline) and an AVX2 loop (two pixels per 256-bit
// vector, chosen at run time).
//
// Both perform the same float operations in the same order as the scalar body (one SIMD lane per
// channel, multiply then add, no fused multiply-add), so their results are bit-identical to the
// scalar path; the tests compare all of them against the NumPy reference and each other.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/warp/warp_body.h"

#if defined(__SSE4_1__)
#include <immintrin.h>
#define AUPERF_WARP_SIMD 1
#if defined(__GNUC__) || defined(__clang__)
#define AUPERF_WARP_AVX2 1
#endif
#endif

namespace auperf {

#if defined(AUPERF_WARP_SIMD)

// Bytes p[0..3] as 4 floats (the 4th lane is the next pixel's first channel, unused).
inline __m128 load_pixel_ps(const uint8_t* p) {
  int32_t word;
  memcpy(&word, p, 4);
  return _mm_cvtepi32_ps(_mm_cvtepu8_epi32(_mm_cvtsi32_si128(word)));
}

// Bilinear interpolation of the 3 channels (lanes 0-2) at base pixel p00, weights (ax, ay).
inline __m128 sample_inside_ps(const uint8_t* p00, int64_t row_stride, float ax, float ay) {
  const uint8_t* p10 = p00 + row_stride;
  const __m128 a = load_pixel_ps(p00), b = load_pixel_ps(p00 + 3);
  const __m128 d = load_pixel_ps(p10), e = load_pixel_ps(p10 + 3);
  const __m128 wx = _mm_set1_ps(ax), wy = _mm_set1_ps(ay);
  const __m128 top = _mm_add_ps(a, _mm_mul_ps(wx, _mm_sub_ps(b, a)));
  const __m128 bottom = _mm_add_ps(d, _mm_mul_ps(wx, _mm_sub_ps(e, d)));
  return _mm_add_ps(top, _mm_mul_ps(wy, _mm_sub_ps(bottom, top)));
}

// Stores one crop pixel's 3 normalised channels (lanes 0-2).
template <int DType, int Layout>
inline void store_normalised_ps(const WarpParams& p, int64_t n, int64_t y, int64_t x, __m128 out) {
  const int64_t plane = p.out_height * p.out_width;
  if (DType == kWarpFloat32 && Layout == kWarpNCHW) {
    float* dst = static_cast<float*>(p.out) + n * 3 * plane + y * p.out_width + x;
    _mm_store_ss(dst, out);
    reinterpret_cast<int*>(dst)[plane] = _mm_extract_ps(out, 1);
    reinterpret_cast<int*>(dst)[2 * plane] = _mm_extract_ps(out, 2);
    return;
  }
  alignas(16) float lanes[4];
  _mm_store_ps(lanes, out);
  for (int c = 0; c < 3; ++c) {
    const int64_t index = Layout == kWarpNCHW ? (n * 3 + c) * plane + y * p.out_width + x
                                              : ((n * p.out_height + y) * p.out_width + x) * 3 + c;
    store_value<DType>(p.out, index, lanes[c]);
  }
}

// Normalises and stores one crop pixel from its 3 sampled channels (lanes 0-2).
template <int DType, int Layout>
inline void store_pixel_ps(const WarpParams& p, bool swap, __m128 scale, __m128 bias, int64_t n,
                           int64_t y, int64_t x, __m128 v) {
  if (swap) v = _mm_shuffle_ps(v, v, _MM_SHUFFLE(3, 0, 1, 2));
  store_normalised_ps<DType, Layout>(p, n, y, x, _mm_add_ps(_mm_mul_ps(v, scale), bias));
}

// Frame coordinates of the pixels of crop row y, two pixels at a time: the maths of
// source_point + locate for points known to be inside the frame (sx, sy >= 0, so truncation is
// floor), with the same operations in the same order.
struct RowMap {
  __m128d cx, cy, ty, tyy, tx, txx;
};

inline RowMap row_map(const double* inv, int64_t y) {
  const double yd = static_cast<double>(y);
  return {_mm_set1_pd(inv[0]), _mm_set1_pd(inv[3]), _mm_set1_pd(inv[1] * yd),
          _mm_set1_pd(inv[4] * yd), _mm_set1_pd(inv[2]), _mm_set1_pd(inv[5])};
}

// Base pixels (ix, iy: lanes 0-1) and weights (ax, ay: lanes 0-1) of crop pixels x and x + 1.
inline void locate_pair(const RowMap& m, int64_t x, __m128i* ix, __m128i* iy, __m128* ax,
                        __m128* ay) {
  const __m128d xd = _mm_setr_pd(static_cast<double>(x), static_cast<double>(x + 1));
  const __m128d sx = _mm_add_pd(_mm_add_pd(_mm_mul_pd(m.cx, xd), m.ty), m.tx);
  const __m128d sy = _mm_add_pd(_mm_add_pd(_mm_mul_pd(m.cy, xd), m.tyy), m.txx);
  *ix = _mm_cvttpd_epi32(sx);
  *iy = _mm_cvttpd_epi32(sy);
  *ax = _mm_cvtpd_ps(_mm_sub_pd(sx, _mm_cvtepi32_pd(*ix)));
  *ay = _mm_cvtpd_ps(_mm_sub_pd(sy, _mm_cvtepi32_pd(*iy)));
}

// Byte offsets in the frame of the base pixels of a located pair.
inline void pair_offsets(__m128i ix, __m128i iy, int64_t row_stride, int64_t* off0,
                         int64_t* off1) {
  *off0 = static_cast<int64_t>(_mm_cvtsi128_si32(iy)) * row_stride +
          static_cast<int64_t>(_mm_cvtsi128_si32(ix)) * 3;
  *off1 = static_cast<int64_t>(_mm_extract_epi32(iy, 1)) * row_stride +
          static_cast<int64_t>(_mm_extract_epi32(ix, 1)) * 3;
}

// Pixels [x_begin, x_end) of a crop row whose taps all lie inside the frame with at least one
// spare row below (so the 4-byte loads stay inside the buffer): the maths of source_point +
// locate + sample_inside + store_pixel, two pixels' coordinates at a time, without the per-pixel
// case analysis (sx, sy >= 0 there, so truncation is floor).
template <int DType, int Layout>
inline void warp_segment_inside_simd(const WarpParams& p, const double* inv, const uint8_t* frame,
                                     int64_t n, int64_t y, int64_t x_begin, int64_t x_end) {
  const bool swap = p.channel_map[0] == 2;
  const __m128 scale = _mm_setr_ps(p.scale[0], p.scale[1], p.scale[2], 0.0f);
  const __m128 bias = _mm_setr_ps(p.bias[0], p.bias[1], p.bias[2], 0.0f);
  const int64_t rs = p.row_stride;
  const RowMap map = row_map(inv, y);
  int64_t x = x_begin;
  for (; x + 1 < x_end; x += 2) {
    __m128i ix, iy;
    __m128 axp, ayp;
    locate_pair(map, x, &ix, &iy, &axp, &ayp);
    alignas(16) float ax[4], ay[4];
    _mm_store_ps(ax, axp);
    _mm_store_ps(ay, ayp);
    int64_t off0, off1;
    pair_offsets(ix, iy, rs, &off0, &off1);
    store_pixel_ps<DType, Layout>(p, swap, scale, bias, n, y, x,
                                  sample_inside_ps(frame + off0, rs, ax[0], ay[0]));
    store_pixel_ps<DType, Layout>(p, swap, scale, bias, n, y, x + 1,
                                  sample_inside_ps(frame + off1, rs, ax[1], ay[1]));
  }
  for (; x < x_end; ++x) {
    double sx, sy;
    source_point(inv, x, y, &sx, &sy);
    const int32_t x0 = static_cast<int32_t>(sx), y0 = static_cast<int32_t>(sy);
    const float ax = static_cast<float>(sx - static_cast<double>(x0));
    const float ay = static_cast<float>(sy - static_cast<double>(y0));
    store_pixel_ps<DType, Layout>(
        p, swap, scale, bias, n, y, x,
        sample_inside_ps(frame + static_cast<int64_t>(y0) * rs + static_cast<int64_t>(x0) * 3, rs,
                         ax, ay));
  }
}

// Whether every pixel in [x_begin, x_end) of crop row y has its taps inside the frame with a
// spare row below. The source point moves linearly along the row, so checking both ends covers
// the segment.
inline bool segment_inside(const WarpParams& p, const double* inv, int64_t y, int64_t x_begin,
                           int64_t x_end) {
  for (int64_t x : {x_begin, x_end - 1}) {
    double sx, sy;
    int32_t x0, y0;
    float ax, ay;
    source_point(inv, x, y, &sx, &sy);
    if (locate(sx, sy, p.width, p.height, &x0, &y0, &ax, &ay) != kTapsInside) return false;
    if (y0 + 2 >= p.height) return false;
  }
  return true;
}

#endif  // AUPERF_WARP_SIMD

#if defined(AUPERF_WARP_AVX2)

// The AVX2 form of warp_segment_inside_simd: two pixels per 256-bit vector (one 128-bit half
// each). It is compiled for AVX2 without FMA, so no multiply-add is fused and the results stay
// bit-identical. The left and right taps of a pixel come from one 8-byte load (they are 3 bytes
// apart), which the spare frame row below keeps inside the buffer.
template <int DType, int Layout>
__attribute__((target("avx2"))) void warp_segment_inside_avx2(const WarpParams& p,
                                                              const double* inv,
                                                              const uint8_t* frame, int64_t n,
                                                              int64_t y, int64_t x_begin,
                                                              int64_t x_end) {
  const bool swap = p.channel_map[0] == 2;
  const __m256 scale = _mm256_setr_ps(p.scale[0], p.scale[1], p.scale[2], 0.0f, p.scale[0],
                                      p.scale[1], p.scale[2], 0.0f);
  const __m256 bias = _mm256_setr_ps(p.bias[0], p.bias[1], p.bias[2], 0.0f, p.bias[0], p.bias[1],
                                     p.bias[2], 0.0f);
  // Bytes 0-3 (left tap) of pixel 0 and 1, then bytes 3-6 (right tap) of pixel 0 and 1.
  const __m128i gather = _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 3, 4, 5, 6, 11, 12, 13, 14);
  const __m256i halves = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
  const int64_t rs = p.row_stride;
  const RowMap map = row_map(inv, y);
  int64_t x = x_begin;
  for (; x + 1 < x_end; x += 2) {
    __m128i ix, iy;
    __m128 axp, ayp;
    locate_pair(map, x, &ix, &iy, &axp, &ayp);
    const __m256 wx = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(axp), halves);
    const __m256 wy = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(ayp), halves);
    int64_t off0, off1;
    pair_offsets(ix, iy, rs, &off0, &off1);
    const uint8_t* p0 = frame + off0;
    const uint8_t* p1 = frame + off1;
    __m256 taps[4];  // left and right taps of the upper row, then of the lower row
    for (int r = 0; r < 2; ++r) {
      __m128i both = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p0 + r * rs));
      both = _mm_castpd_si128(
          _mm_loadh_pd(_mm_castsi128_pd(both), reinterpret_cast<const double*>(p1 + r * rs)));
      const __m128i g = _mm_shuffle_epi8(both, gather);
      taps[2 * r] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(g));
      taps[2 * r + 1] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(g, 8)));
    }
    const __m256 top = _mm256_add_ps(taps[0], _mm256_mul_ps(wx, _mm256_sub_ps(taps[1], taps[0])));
    const __m256 bottom =
        _mm256_add_ps(taps[2], _mm256_mul_ps(wx, _mm256_sub_ps(taps[3], taps[2])));
    __m256 v = _mm256_add_ps(top, _mm256_mul_ps(wy, _mm256_sub_ps(bottom, top)));
    if (swap) v = _mm256_permute_ps(v, _MM_SHUFFLE(3, 0, 1, 2));
    const __m256 out = _mm256_add_ps(_mm256_mul_ps(v, scale), bias);
    store_normalised_ps<DType, Layout>(p, n, y, x, _mm256_castps256_ps128(out));
    store_normalised_ps<DType, Layout>(p, n, y, x + 1, _mm256_extractf128_ps(out, 1));
  }
  if (x < x_end) warp_segment_inside_simd<DType, Layout>(p, inv, frame, n, y, x, x_end);
}

#endif  // AUPERF_WARP_AVX2

}  // namespace auperf
