#include "common/parallel.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

namespace auperf {
namespace {

int default_threads() {
  if (const char* env = std::getenv("AUPERF_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

std::atomic<int>& thread_setting() {
  static std::atomic<int> n{default_threads()};
  return n;
}

}  // namespace

int get_num_threads() { return thread_setting().load(); }

void set_num_threads(int n) { thread_setting().store(std::max(1, n)); }

void parallel_for(int64_t count, const std::function<void(int64_t, int64_t)>& fn,
                  int64_t min_per_thread) {
  if (count <= 0) return;
  const int64_t by_work = count / std::max<int64_t>(1, min_per_thread);
  const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(get_num_threads(), by_work));
  if (threads <= 1) {
    fn(0, count);
    return;
  }
  const int64_t chunk = (count + threads - 1) / threads;
  std::vector<std::thread> workers;
  workers.reserve(static_cast<size_t>(threads - 1));
  for (int64_t t = 1; t < threads; ++t) {
    const int64_t begin = t * chunk;
    const int64_t end = std::min(count, begin + chunk);
    if (begin >= end) break;
    workers.emplace_back([&fn, begin, end] { fn(begin, end); });
  }
  fn(0, std::min(count, chunk));
  for (auto& w : workers) w.join();
}

}  // namespace auperf
