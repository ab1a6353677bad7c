#include "core/thread_pool.h"

#include <algorithm>

namespace imq {

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = std::max(1u, std::thread::hardware_concurrency());
  n_threads_ = n_threads;
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::worker(int index) {
  size_t seen = 0;
  for (;;) {
    std::pair<size_t, size_t> r;
    const std::function<void(size_t, size_t, int)>* job;
    {
      std::unique_lock lk(mu_);
      start_cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      r = ranges_[index];
      job = job_;
    }
    if (r.first < r.second) {
      try {
        (*job)(r.first, r.second, index);
      } catch (...) {
        std::lock_guard lk(mu_);
        if (!error_) error_ = std::current_exception();
      }
    }
    {
      std::lock_guard lk(mu_);
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(size_t n, const std::function<void(size_t, size_t, int)>& fn, size_t grain) {
  if (n == 0) return;
  grain = std::max<size_t>(1, grain);
  const size_t units = (n + grain - 1) / grain;
  const size_t nt = std::min<size_t>(n_threads_, units);
  if (nt <= 1) {
    fn(0, n, 0);
    return;
  }
  std::vector<std::pair<size_t, size_t>> ranges(n_threads_, {0, 0});
  for (size_t t = 0; t < nt; ++t) {
    size_t b = std::min(n, (units * t / nt) * grain);
    size_t e = std::min(n, (units * (t + 1) / nt) * grain);
    ranges[t] = {b, e};
  }
  {
    std::lock_guard lk(mu_);
    ranges_ = std::move(ranges);
    job_ = &fn;
    error_ = nullptr;
    pending_ = n_threads_ - 1;
    ++generation_;
  }
  start_cv_.notify_all();
  std::exception_ptr mine;
  try {
    fn(ranges_[0].first, ranges_[0].second, 0);
  } catch (...) {
    mine = std::current_exception();
  }
  std::unique_lock lk(mu_);
  done_cv_.wait(lk, [&] { return pending_ == 0; });
  if (mine) std::rethrow_exception(mine);
  if (error_) std::rethrow_exception(error_);
}

}  // namespace imq
