#include "gptq/embedding.h"

#include <fmt/format.h>

#include <cstring>

#include "imq/quant.h"

namespace imq::gptq {
namespace {

// acc[j] += sum over the rows of `name` of W[i,j]^2, row by row (no copy of the whole tensor);
// nothing when the file has no such tensor of row length n.
void add_column_squares(const gguf::File& file, const std::string& name, int64_t n,
                        std::vector<double>& acc) {
  const gguf::TensorInfo* t = file.find_tensor(name);
  if (!t || t->ne[0] != n) return;
  const auto bytes = file.tensor_data(*t);
  std::vector<float> row(static_cast<size_t>(n));
  const quant::Codec* codec = t->type == GgmlType::F32 ? nullptr : &quant::codec(t->type);
  const size_t row_bytes = codec ? quant::row_size(*codec, n) : size_t(n) * sizeof(float);
  for (int64_t r = 0; r < t->n_rows(); ++r) {
    const uint8_t* src = bytes.data() + size_t(r) * row_bytes;
    if (codec)
      codec->dequantize(src, row.data(), n);
    else
      std::memcpy(row.data(), src, row_bytes);
    for (int64_t j = 0; j < n; ++j) acc[size_t(j)] += double(row[size_t(j)]) * row[size_t(j)];
  }
  // Read once, here, long before its layer needs it: its pages leave the RSS (the layer loop
  // maps them in again, from the page cache while memory allows).
  file.drop_pages(*t);
}

// out[j] += g_j^2 * cols[j] for the F32 norm `name` of length n; false when there is none.
bool add_norm(const gguf::File& file, const std::string& name, const std::vector<double>& cols,
              std::vector<double>& out) {
  const gguf::TensorInfo* t = file.find_tensor(name);
  if (!t || t->type != GgmlType::F32 || t->n_elements() != int64_t(out.size())) return false;
  const auto bytes = file.tensor_data(*t);
  for (size_t j = 0; j < out.size(); ++j) {
    float g;
    std::memcpy(&g, bytes.data() + j * sizeof(float), sizeof g);
    out[j] += double(g) * g * cols[j];
  }
  return true;
}

}  // namespace

std::vector<float> embedding_importance(const gguf::File& file, int64_t n_embd, int64_t n_layer) {
  std::vector<double> acc(static_cast<size_t>(n_embd), 0.0);
  bool any = false;
  auto reader = [&](const std::string& norm, std::initializer_list<std::string_view> weights,
                    const std::string& prefix) {
    std::vector<double> cols(size_t(n_embd), 0.0);
    for (std::string_view w : weights) add_column_squares(file, fmt::format("{}{}.weight", prefix, w), n_embd, cols);
    any |= add_norm(file, norm, cols, acc);
  };
  for (int64_t il = 0; il < n_layer; ++il) {
    const std::string p = fmt::format("blk.{}.", il);
    reader(p + "attn_norm.weight", {"attn_q", "attn_k", "attn_v", "attn_qkv"}, p);
    reader(p + "ffn_norm.weight", {"ffn_gate", "ffn_up", "ffn_gate_inp", "ffn_gate_exps", "ffn_up_exps"}, p);
  }
  reader("output_norm.weight", {file.find_tensor("output.weight") ? "output" : "token_embd"}, "");
  double mean = 0;
  for (double a : acc) mean += a;
  mean /= double(n_embd);
  if (!any || !(mean > 0)) return {};
  std::vector<float> out(static_cast<size_t>(n_embd));  // scaled to mean 1, as imatrix data runs
  for (size_t j = 0; j < out.size(); ++j) out[j] = float(acc[j] / mean);
  return out;
}

}  // namespace imq::gptq
