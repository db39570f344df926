// A small parallel-for over an index range on std::threads.
//
// The core does not use OpenMP: torch ships its own OpenMP runtime and two runtimes in one
// process fight over threads. Work is split into contiguous chunks, one per thread; the caller
// thread takes the first chunk. Exceptions must not escape `fn` (kernel bodies never throw).
#pragma once

#include <cstdint>
#include <functional>

namespace auperf {

// Threads used by CPU kernels: AUPERF_NUM_THREADS if set, else std::thread::hardware_concurrency.
int get_num_threads();
void set_num_threads(int n);

// Calls fn(begin, end) on disjoint chunks covering [0, count), on up to get_num_threads() threads,
// giving each thread at least `min_per_thread` items: starting a thread costs tens of
// microseconds, more than small calls (one face, a few AUs) take on their own.
void parallel_for(int64_t count, const std::function<void(int64_t, int64_t)>& fn,
                  int64_t min_per_thread = 1);

}  // namespace auperf
