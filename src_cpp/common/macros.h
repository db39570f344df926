// Portability macros shared by every kernel body.
#pragma once

// AUPERF_HD marks a per-element maths function compiled for host and device. Such functions are
// force-inlined: they sit in the innermost loops, and a call would spill their outputs to memory.
#if defined(__CUDACC__)
#define AUPERF_HD __host__ __device__
#elif defined(__GNUC__) || defined(__clang__)
#define AUPERF_HD __attribute__((always_inline))
#else
#define AUPERF_HD
#endif
#define AUPERF_RESTRICT __restrict__
