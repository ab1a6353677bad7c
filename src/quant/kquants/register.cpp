#include "quant/families.h"
#include "quant/kquants/kquants.h"
#include "quant/kquants/search_imq.h"

namespace imq::quant {

void add_kquant_codecs(std::vector<Codec>& out) {
  auto with_imq = [](Codec c, auto imq, const GridOps* grid) {
    c.quantize_imq = imq;
    c.grid = grid;
    return c;
  };
  out.push_back(with_imq(q2_k_codec(), quantize_rows<BlockQ2K, quantize_block_q2_k_imq>, q2_k_grid()));
  out.push_back(with_imq(q3_k_codec(), quantize_rows<BlockQ3K, quantize_block_q3_k_imq>, q3_k_grid()));
  out.push_back(with_imq(q4_k_codec(), quantize_rows<BlockQ4K, quantize_block_q4_k_imq>, q4_k_grid()));
  out.push_back(with_imq(q5_k_codec(), quantize_rows<BlockQ5K, quantize_block_q5_k_imq>, q5_k_grid()));
  out.push_back(with_imq(q6_k_codec(), quantize_rows<BlockQ6K, quantize_block_q6_k_imq>, q6_k_grid()));
  out.push_back(q8_k_codec());
}

}  // namespace imq::quant
