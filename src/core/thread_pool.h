// ThreadPool: a fixed set of worker threads for data-parallel loops. It is owned by a context
// object and passed down (no global pool). parallel_for splits [0, n) into contiguous ranges,
// one per thread, and returns when all are done; the calling thread takes the first range.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace imq {

class ThreadPool {
 public:
  // n_threads <= 0 means std::thread::hardware_concurrency().
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // fn(begin, end, thread_index) is called for disjoint ranges covering [0, n). Ranges are
  // multiples of `grain` (except the last). Exceptions from workers are rethrown here.
  void parallel_for(size_t n, const std::function<void(size_t, size_t, int)>& fn, size_t grain = 1);

 private:
  void worker(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  const std::function<void(size_t, size_t, int)>* job_ = nullptr;
  std::vector<std::pair<size_t, size_t>> ranges_;
  size_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace imq
