// Model: the mapped GGUF file, its hyperparameters and weight views.
#include <map>
#include <memory>

#include "imq/error.h"
#include "imq/gguf.h"
#include "imq/hf.h"
#include "imq/quant.h"
#include "model/weights.h"

namespace imq::model {

struct Model::Impl {
  std::shared_ptr<const gguf::File> file;  // shared by the models made with share()
  Config config;
  Weights weights;
  std::map<std::string, std::vector<uint8_t>, std::less<>> replaced;  // replace_weight's data

  // Every view of the matmul weight `name` (two for tied embeddings).
  std::vector<WeightView*> views(std::string_view name) {
    std::vector<WeightView*> out;
    auto add = [&](WeightView& v) {
      if (v.data && v.name == name) out.push_back(&v);
    };
    add(weights.token_embd);
    add(weights.output);
    for (auto& l : weights.layers)
      for (WeightView* v : {&l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_gate, &l.ffn_up, &l.ffn_down,
                            &l.ffn_gate_inp, &l.ffn_gate_exps, &l.ffn_up_exps, &l.ffn_down_exps})
        add(*v);
    return out;
  }
};

Model::Model() = default;
Model::~Model() = default;

std::unique_ptr<Model> Model::load(const std::string& path) { return load(path, LoadOptions{}); }

std::unique_ptr<Model> Model::load(const std::string& path, const LoadOptions& options) {
  gguf::OpenOptions oo;
  oo.mmap = options.mmap;
  auto file = hf::open_model_file(path, oo);  // a GGUF file, or an HF folder converted in memory
  Config config = load_config(file);
  Weights weights = load_weights(file, config);
  std::unique_ptr<Model> m(new Model());
  m->impl_ = std::make_unique<Impl>(
      Impl{std::make_shared<const gguf::File>(std::move(file)), config, std::move(weights), {}});
  return m;
}

std::unique_ptr<Model> Model::share(const Model& base) {
  std::unique_ptr<Model> m(new Model());
  const auto& file = base.impl_->file;
  m->impl_ = std::make_unique<Impl>(Impl{file, base.impl_->config, load_weights(*file, base.impl_->config), {}});
  return m;
}

std::span<const uint8_t> Model::replaced_weight(std::string_view name) const {
  const auto it = impl_->replaced.find(name);
  return it == impl_->replaced.end() ? std::span<const uint8_t>{} : std::span<const uint8_t>(it->second);
}

void Model::replace_weight(std::string_view name, GgmlType type, std::vector<uint8_t> data) {
  const auto views = impl_->views(name);
  if (views.empty()) throw_error("{}: no weight matrix named {}", impl_->file->path(), name);
  const WeightView& old = *views.front();
  const gguf::TensorInfo& t = impl_->file->tensor(name);
  const bool restore = data.empty();
  if (restore) type = t.type;
  const quant::Codec* codec = quant::find_codec(type);
  if (!codec) throw_error("tensor {}: type {} cannot be read", name, ggml_type_display_name(type));
  if (old.ne0 % codec->block_size != 0)
    throw_error("tensor {}: row length {} is not a multiple of {}'s block size {}", name, old.ne0,
                codec->name, codec->block_size);
  const size_t row_bytes = quant::row_size(*codec, old.ne0);
  const uint8_t* ptr = impl_->file->tensor_data(t).data();
  if (restore) {
    if (auto it = impl_->replaced.find(name); it != impl_->replaced.end()) impl_->replaced.erase(it);
  } else {
    const size_t want = row_bytes * size_t(old.ne1 * old.ne2);
    if (data.size() != want)
      throw_error("tensor {}: {} bytes given, {} rows of {} as {} take {}", name, data.size(),
                  old.ne1 * old.ne2, old.ne0, codec->name, want);
    auto& slot = impl_->replaced[std::string(name)];
    slot = std::move(data);
    ptr = slot.data();
  }
  for (WeightView* v : views) *v = kernels::make_weight_view(v->name, *codec, v->ne0, v->ne1, v->ne2, ptr);
}

const Config& Model::config() const { return impl_->config; }
const gguf::File& Model::file() const { return *impl_->file; }
const Model::Weights& Model::weights() const { return impl_->weights; }

}  // namespace imq::model
