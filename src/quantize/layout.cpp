// Output layout: the GGUF writer decides the header, so sizes and offsets come from it.
#include "imq/error.h"
#include "quantize/plan_internal.h"

namespace imq::quantize {

void check_imatrix_matches(const gguf::File& model, const ImportanceData& imp,
                           const std::string& imatrix_path) {
  for (const auto& [name, values] : imp.entries)
    if (model.find_tensor(name)) return;
  throw_error("{}: none of its {} imatrix entries (first: {}) names a tensor of {}: is the "
              "imatrix for another model?", imatrix_path, imp.entries.size(),
              imp.entries.begin()->first, model.path());
}

gguf::Writer make_writer(const Plan& plan) {
  gguf::Writer w;
  w.set_alignment(plan.alignment);  // before the keys, so general.alignment keeps its place
  for (const auto& kv : plan.kvs) w.set(kv.key, kv.value);
  for (const auto& t : plan.tensors)
    w.add_tensor_deferred(t.name, t.dst_type, std::span<const int64_t>(t.ne, t.n_dims));
  return w;
}

void layout(Plan& plan) {
  gguf::Writer w = make_writer(plan);
  const uint64_t a = plan.alignment;
  auto pad = [a](uint64_t n) { return (n + a - 1) / a * a; };
  plan.data_offset = pad(w.header_size());
  uint64_t off = 0;
  for (auto& t : plan.tensors) {
    t.offset = off;
    off += pad(t.dst_bytes);
  }
  plan.file_size = plan.data_offset + off;
  if (plan.file_size != w.file_size())
    throw_error("internal: planned file size {} differs from the writer's {}", plan.file_size,
                w.file_size());
}

}  // namespace imq::quantize
