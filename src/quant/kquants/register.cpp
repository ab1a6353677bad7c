#include "imq/ggml_types.h"
#include "quant/families.h"
#include "quant/kquants/kquants.h"
#include "quant/kquants/search_imq.h"

namespace imq::quant {

RowQuantizeFn k_imq_rows(GgmlType type) {
  switch (type) {
    case GgmlType::Q2_K: return quantize_rows<BlockQ2K, quantize_block_q2_k_imq>;
    case GgmlType::Q3_K: return quantize_rows<BlockQ3K, quantize_block_q3_k_imq>;
    case GgmlType::Q4_K: return quantize_rows<BlockQ4K, quantize_block_q4_k_imq>;
    case GgmlType::Q5_K: return quantize_rows<BlockQ5K, quantize_block_q5_k_imq>;
    case GgmlType::Q6_K: return quantize_rows<BlockQ6K, quantize_block_q6_k_imq>;
    default: return nullptr;
  }
}

void add_kquant_codecs(std::vector<Codec>& out) {
  auto with_imq = [](Codec c, RowQuantizeFn imq, const GridOps* grid) {
    c.quantize_imq = imq;
    c.grid = grid;
    return c;
  };
  // Q5_K offers no imq search to --search imq: on the MoE test model it made Q5_K_M 1.52x
  // llama.cpp's KLD (layers only; 1.80x whole), and without it 1.01x / 0.99x; on dict8-spm4k
  // and dense-spm4k 0.99x / 0.93x with it, 1.03x / 0.99x without (5,120 wiki tokens).
  using enum GgmlType;
  out.push_back(with_imq(q2_k_codec(), k_imq_rows(Q2_K), q2_k_grid()));
  out.push_back(with_imq(q3_k_codec(), k_imq_rows(Q3_K), q3_k_grid()));
  out.push_back(with_imq(q4_k_codec(), k_imq_rows(Q4_K), q4_k_grid()));
  out.push_back(with_imq(q5_k_codec(), nullptr, q5_k_grid()));
  out.push_back(with_imq(q6_k_codec(), k_imq_rows(Q6_K), q6_k_grid()));
  out.push_back(q8_k_codec());
}

}  // namespace imq::quant
