// Model: the mapped GGUF file, its hyperparameters and weight views.
#include "imq/gguf.h"
#include "model/weights.h"

namespace imq::model {

struct Model::Impl {
  gguf::File file;
  Config config;
  Weights weights;
};

Model::Model() = default;
Model::~Model() = default;

std::unique_ptr<Model> Model::load(const std::string& path) {
  auto file = gguf::File::open(path);
  Config config = load_config(file);
  Weights weights = load_weights(file, config);
  std::unique_ptr<Model> m(new Model());
  m->impl_ = std::make_unique<Impl>(Impl{std::move(file), config, std::move(weights)});
  return m;
}

const Config& Model::config() const { return impl_->config; }
const gguf::File& Model::file() const { return impl_->file; }
const Model::Weights& Model::weights() const { return impl_->weights; }

}  // namespace imq::model
