// Collector: the MatmulObserver that accumulates squared activations (spec c.1, c.2).
//
// Events of the chunk being evaluated go into per-weight double accumulators (row by row, in
// token order); end_chunk() adds them to the float totals once, so the totals only ever hold
// whole chunks. That makes the result independent of threads and micro-batch sizes, lets a
// stop drop the chunk in flight cleanly, and makes resuming from a save exact.
#pragma once
#include <csignal>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "imq/error.h"
#include "imq/imatrix.h"
#include "imq/observer.h"

namespace imq::imatrix {

// Thrown from on_matmul when the stop flag is set.
struct CollectionStopped {};

// Thrown from on_matmul when a weight's input holds NaN/Inf.
class NonFiniteActivations : public Error {
 public:
  using Error::Error;
};

class Collector : public MatmulObserver {
 public:
  // `totals` is the data to add to (a resumed imatrix, or empty); chunk_index names the
  // 1-based chunk in error messages.
  Collector(Imatrix totals, bool process_output, const volatile std::sig_atomic_t* stop = nullptr);

  void on_matmul(const MatmulEvent& e) override;

  void set_chunk_index(int64_t chunk_index) { chunk_index_ = chunk_index; }
  // Adds the chunk's accumulators to the totals and clears them. Throws when a weight's size
  // disagrees with the totals it continues.
  void end_chunk();
  void drop_chunk();  // forgets the chunk in flight
  const Imatrix& totals() const { return totals_; }
  Imatrix& totals() { return totals_; }

  // Whether a weight's matmul is collected (llama-imatrix's filter).
  static bool wanted(std::string_view weight, bool is_expert, int64_t n_rows, bool process_output);

 private:
  struct Accumulator {
    int64_t ne0 = 0;
    std::vector<double> sums;     // [n_slots * ne0]
    std::vector<int64_t> counts;  // [n_slots]
    bool touched = false;
  };
  Imatrix totals_;
  bool process_output_;
  const volatile std::sig_atomic_t* stop_;
  int64_t chunk_index_ = 1;
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, Accumulator, NameHash, std::equal_to<>> chunk_;
};

}  // namespace imq::imatrix
