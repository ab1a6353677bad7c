// In-situ quantization (imq/insitu.h): imatrix::collect into memory, quantize::make_plan on it,
// each planned tensor quantized and swapped into the loaded model (Model::replace_weight).
#include "imq/insitu.h"

#include "core/mapped_file.h"
#include "imq/error.h"
#include "imq/imatrix_collect.h"
#include "imq/tokenizer.h"

namespace imq::insitu {
namespace {

struct IsqName {
  const char* name;
  const char* ftype;  // the llama.cpp file type whose default tensor type it is
};
constexpr IsqName kIsq[] = {{"Q2K", "Q2_K"},   {"Q3K", "Q3_K_M"}, {"Q4K", "Q4_K_M"}, {"Q5K", "Q5_K_M"},
                            {"Q6K", "Q6_K"},   {"Q4_0", "Q4_0"},  {"Q4_1", "Q4_1"},  {"Q5_0", "Q5_0"},
                            {"Q5_1", "Q5_1"},  {"Q8_0", "Q8_0"}};

std::string read_file(const std::string& path) {
  const MappedFile f(path);  // names the file and the reason when it cannot be read
  if (f.bytes().empty()) throw_error("{}: the calibration file is empty", path);
  return {reinterpret_cast<const char*>(f.bytes().data()), f.bytes().size()};
}

}  // namespace

const char* stage_name(Stage s) {
  switch (s) {
    case Stage::Load: return "load";
    case Stage::Calibrate: return "calibrate";
    case Stage::Quantize: return "quantize";
  }
  return "?";
}

quantize::Options isq_options(const std::string& isq) {
  quantize::Options o;
  for (const IsqName& n : kIsq)
    if (isq == n.name) {
      o.ftype = quantize::parse_ftype(n.ftype).ftype;
      o.pure = true;
      return o;
    }
  try {
    o.ftype = quantize::parse_ftype(isq).ftype;
  } catch (const Error&) {
    std::string names;
    for (const IsqName& n : kIsq) names += fmt::format("{}{}", names.empty() ? "" : " ", n.name);
    throw_error("unknown ISQ type '{}': mistral.rs names {} or a llama-quantize type (Q4_K_M ...)", isq,
                names);
  }
  return o;
}

struct Runner::Impl {
  Options opt;
  std::unique_ptr<model::Model> model;
  std::unique_ptr<Tokenizer> tok;
  std::optional<imatrix::Imatrix> imatrix;
  std::string imatrix_name;  // last save_imatrix path
  quantize::Options qopt;
  quantize::Plan plan;

  void say(const std::string& s) const {
    if (opt.log) opt.log(s);
  }
  void advance(Stage st, uint64_t done, uint64_t total) const {
    if (opt.progress) opt.progress(st, done, total);
  }
  quantize::Options plan_options() const {
    quantize::Options o = qopt;
    o.search = opt.search;
    if (imatrix) {
      o.imatrix = &*imatrix;
      o.imatrix_path = imatrix_name;
    }
    return o;
  }
};

Runner::Runner() : impl_(std::make_unique<Impl>()) {}
Runner::~Runner() = default;

std::unique_ptr<Runner> Runner::build(const std::string& model_path, const Options& options) {
  std::unique_ptr<Runner> r(new Runner());
  Impl& s = *r->impl_;
  s.opt = options;
  s.qopt = isq_options(options.isq);
  s.advance(Stage::Load, 0, 1);
  s.model = model::Model::load(model_path);
  s.tok = load_tokenizer(s.model->file());
  s.advance(Stage::Load, 1, 1);
  s.say(fmt::format("loaded {} ({} tensors)", model_path, s.model->file().tensors().size()));

  if (!options.calibration_file.empty()) {
    const auto tokens = s.tok->encode(read_file(options.calibration_file), true, false);
    imatrix::CollectOptions co;
    co.n_ctx = options.calibration_ctx;
    co.n_ubatch = options.calibration_ctx;
    co.n_chunks = options.calibration_chunks;
    co.n_threads = options.n_threads;
    co.dataset = options.calibration_file;
    imatrix::CollectHooks hooks;
    imatrix::CollectProgress last{};
    hooks.on_chunk = [&](const imatrix::CollectProgress& p) {
      last = p;
      s.advance(Stage::Calibrate, uint64_t(p.done), uint64_t(p.n_chunks));
    };
    const int32_t bos = s.tok->add_bos() ? s.tok->bos() : -1;
    s.advance(Stage::Calibrate, 0, 1);
    s.imatrix = imatrix::collect(*s.model, tokens, bos, {}, co, hooks).data;
    s.say(fmt::format("calibrated on {} chunks of {} tokens of {}, perplexity {:.4f}", last.done,
                      options.calibration_ctx, options.calibration_file, last.nll.ppl()));
  }

  s.plan = quantize::make_plan(s.model->file(), s.plan_options());
  uint64_t done = 0, total = 0;
  for (const auto& tp : s.plan.tensors) total += tp.quantize;
  s.advance(Stage::Quantize, 0, total);
  for (const auto& tp : s.plan.tensors) {
    if (!tp.quantize) continue;
    s.model->replace_weight(tp.name, tp.dst_type,
                            quantize::quantize_tensor(s.model->file(), tp, tp.dst_type, options.search,
                                                      options.n_threads));
    s.advance(Stage::Quantize, ++done, total);
  }
  s.say(fmt::format("quantized {} tensors ({}{})", total, options.isq,
                    s.imatrix ? ", with the calibration imatrix" : ", plain rounding"));
  return r;
}

std::string Runner::generate(const std::string& prompt, int64_t max_tokens, const eval::SamplingOptions& sampling) {
  Impl& s = *impl_;
  const auto ids = s.tok->encode(prompt, true, true);
  if (ids.empty()) throw_error("the prompt tokenizes to nothing");
  model::SessionOptions so;
  so.n_ctx = int64_t(ids.size()) + std::max<int64_t>(1, max_tokens);
  so.n_ubatch = std::min<int64_t>(512, so.n_ctx);
  so.n_threads = s.opt.n_threads;
  model::Session session(*s.model, so);
  eval::GenerateOptions g;
  g.n_predict = max_tokens;
  g.sampling = sampling;
  g.is_eog = [&](int32_t id) { return s.tok->is_eog(id); };
  std::string out;
  eval::generate(session, ids, g, [&](int32_t id) {
    if (!s.tok->is_eog(id)) out += s.tok->piece(id);
    return true;
  });
  return out;
}

void Runner::save_gguf(const std::string& path) {
  Impl& s = *impl_;
  // Re-planned so that the metadata names the imatrix as saved; the tensors are the bytes the
  // model already holds (nothing is quantized twice).
  s.plan = quantize::make_plan(s.model->file(), s.plan_options());
  quantize::Callbacks cb;
  cb.provided = [&](const quantize::TensorPlan& tp) { return s.model->replaced_weight(tp.name); };
  quantize::write_quantized(s.model->file(), s.plan, path, s.opt.n_threads, cb);
}

void Runner::save_imatrix(const std::string& path, imatrix::Format format) {
  Impl& s = *impl_;
  if (!s.imatrix) throw_error("{}: no imatrix to save (the runner was built without a calibration file)", path);
  imatrix::save(*s.imatrix, path, format);
  s.imatrix_name = path;
}

const imatrix::Imatrix* Runner::imatrix() const { return impl_->imatrix ? &*impl_->imatrix : nullptr; }
const quantize::Plan& Runner::plan() const { return impl_->plan; }
model::Model& Runner::model() { return *impl_->model; }

}  // namespace imq::insitu
