// The hook on every weight matmul of the forward pass. The engine calls it with the input
// activations of each matmul (never the weights or outputs); a null observer costs one branch.
// This is how the imatrix collector sees activations.
#pragma once
#include <cstdint>
#include <string_view>

namespace imq {

struct MatmulEvent {
  std::string_view weight;  // GGUF name of the weight, e.g. "blk.3.ffn_down.weight" or
                            // "blk.0.ffn_up_exps.weight"
  int64_t ne0;              // input features = columns of the weight = length of each x row
  int64_t n_rows;           // number of activation rows in x
  const float* x;           // [n_rows, ne0], row-major, contiguous
  int32_t expert;           // -1 for a dense weight; else the expert whose routed rows x holds
  int32_t n_expert;         // 0 for a dense weight; else the number of experts of the 3-D weight
};

class MatmulObserver {
 public:
  virtual ~MatmulObserver() = default;
  // Called once per weight per micro-batch (dense) or per expert with routed rows (MoE),
  // possibly with n_rows == 0 never. Called from the thread that runs the forward pass.
  virtual void on_matmul(const MatmulEvent& e) = 0;
};

}  // namespace imq
