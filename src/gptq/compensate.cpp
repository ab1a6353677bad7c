// The layer loop of error-compensated quantization (imq/gptq.h). Per layer, the weights are
// taken in the order the forward pass reaches them (q/k/v, attn_output, gate/up, down), and
// each group's H is collected with the groups before it already quantized ("true sequential"),
// so every weight corrects the error of everything that feeds it. Hidden states of every
// calibration chunk are kept between layers ([tokens, n_embd] floats); the quantized weights
// live in the model (Model::replace_weight) and are streamed into the output at the end.
#include "imq/gptq.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <set>

#include "core/thread_pool.h"
#include "gptq/hessian.h"
#include "gptq/solver.h"
#include "imq/error.h"
#include "imq/model.h"
#include "imq/quant.h"
#include "imq/tokenizer.h"

namespace imq::gptq {
namespace {

using quantize::TensorPlan;

// Calibration tokens without --calibration-chunks. More keep helping, less and less
// (dict8-spm4k Q2_K layers only, chunks of 256: KLD 0.0223 at 8k tokens, 0.0188 at 16k, 0.0177
// at 32k) while the time grows in proportion (125M bench model: ~2 minutes per 8k tokens on
// 2 cores).
constexpr int64_t kDefaultTokens = 16384;

// The weights of one layer in the order the forward pass multiplies them; each group shares
// one observation pass.
constexpr std::array<std::array<std::string_view, 4>, 4> kGroups{{
    {"attn_q", "attn_k", "attn_v", ""},
    {"attn_output", "", "", ""},
    {"ffn_gate", "ffn_up", "ffn_gate_exps", "ffn_up_exps"},
    {"ffn_down", "ffn_down_exps", "", ""},
}};

using Hessians = std::map<std::pair<std::string, int32_t>, Hessian>;

struct Run {
  const Options& o;
  model::Model& model;
  const quantize::Plan& plan;
  ThreadPool pool;
  model::Session session;
  // The full-precision model beside it (Options::correct): its hidden states are the targets.
  model::Session* fp_session;
  int64_t n_ctx, n_chunks, d;
  std::vector<float> hidden;     // [n_chunks * n_ctx, n_embd], through the quantized layers
  std::vector<float> hidden_fp;  // the same through the full-precision layers
  Summary summary;
  int64_t step = 0, steps = 0;

  void say(const std::string& s) const {
    if (o.log) o.log(s);
  }
  void check_cancelled() const {
    if (o.cancelled && o.cancelled()) throw_error("interrupted: no output written");
  }
  void advance() {
    ++step;
    if (o.progress) o.progress(step, steps);
  }
  std::span<float> chunk(int64_t c) {
    return {hidden.data() + c * n_ctx * d, size_t(n_ctx * d)};
  }
  std::span<float> chunk_fp(int64_t c) {
    return {hidden_fp.data() + c * n_ctx * d, size_t(n_ctx * d)};
  }
  bool imq() const { return plan.search == quantize::Search::kImq; }

  // The tensor's rows as floats.
  std::vector<float> dequantized(const TensorPlan& tp) const {
    const gguf::File& f = model.file();
    const auto bytes = f.tensor_data(f.tensor(tp.name));
    std::vector<float> w(size_t(tp.n_elements()));
    if (tp.src_type == uint32_t(GgmlType::F32))
      std::memcpy(w.data(), bytes.data(), w.size() * sizeof(float));
    else
      quant::codec(tp.src_type).dequantize(bytes.data(), w.data(), tp.n_elements());
    return w;
  }

  void plain(const TensorPlan& tp) {
    model.replace_weight(tp.name, tp.dst_type,
                         quantize::quantize_tensor(model.file(), tp, tp.dst_type, plan.search,
                                                   o.n_threads));
    summary.plain += size_t(tp.ne[2]);
  }

  // Quantizes tp with error feedback where its H allows (the H of weight `lead`, which sees
  // the same input), expert by expert for 3-D weights.
  // g: G = (X − X̃)ᵀX̃ of a dense weight's paired runs, or null (no correction).
  void compensated(const TensorPlan& tp, const std::string& lead, Hessians& hs,
                   const std::vector<float>* g = nullptr) {
    const quant::Codec& codec = quant::codec(tp.dst_type);
    const int64_t n = tp.ne[0], rows = tp.ne[1];
    const size_t row_bytes = quant::row_size(codec, n);
    const int64_t min_tokens = o.min_tokens > 0 ? o.min_tokens : std::max<int64_t>(1, n / 8);
    std::vector<float> w = dequantized(tp);
    std::vector<uint8_t> out(size_t(tp.ne[1] * tp.ne[2]) * row_bytes);
    const bool moe = tp.ne[2] > 1;
    std::vector<std::string> fallbacks;
    for (int64_t e = 0; e < tp.ne[2]; ++e) {
      float* we = w.data() + e * rows * n;
      uint8_t* oe = out.data() + size_t(e * rows) * row_bytes;
      const float* imp = tp.importance.empty() ? nullptr : tp.importance.data() + e * n;
      auto it = hs.find({lead, moe ? int32_t(e) : -1});
      const int64_t tokens = it == hs.end() ? 0 : it->second.tokens;
      Factor f;
      std::string why;
      std::vector<double> h;
      if (tokens >= min_tokens) {
        h = it->second.full();
        if (o.act_order) f.order = importance_order(h, n, codec.block_size);
      }
      if (tokens < min_tokens)
        why = fmt::format("{} tokens (< {})", tokens, min_tokens);
      else if (!factor_hessian(h, n, o.damp, f))
        why = "H is not positive definite even with 1000x the damping";
      else if (g)
        corrected_target(h, *g, f, we, rows);
      if (!why.empty()) {
        const auto fn = imq() && codec.quantize_imq ? codec.quantize_imq : codec.quantize;
        fn(we, oe, rows, n, imp);
        fallbacks.push_back(moe ? fmt::format("expert {}: {}", e, why) : why);
        ++summary.plain;
        continue;
      }
      // The block fits weigh columns by diag(H) / tokens: the imatrix of the inputs this weight
      // sees with everything before it quantized, on all the calibration tokens (measured on
      // dict8-spm4k Q4_K_M: KLD 0.00162 against 0.00177 with an 8-chunk llama-imatrix file).
      const std::vector<float> ms = it->second.mean_square();
      quantize_rows(codec, o.variants, f, ms.data(), we, rows, oe, pool);
      ++summary.compensated;
      if (f.damp > o.damp) say(fmt::format("{}: damping raised to {}", tp.name, f.damp));
    }
    for (const auto& s : fallbacks) say(fmt::format("{}: plain rounding ({})", tp.name, s));
    model.replace_weight(tp.name, tp.dst_type, std::move(out));
  }

  // Runs layer il over every chunk; in place when `advance_hidden`, else on a copy that stops
  // once the observer has seen the input of `stop_at` (a dense weight; empty: the whole layer).
  void run_layer(int64_t il, bool advance_hidden, MatmulObserver* obs, std::string_view stop_at = {}) {
    session.set_observer(obs);
    std::vector<float> tmp;
    for (int64_t c = 0; c < n_chunks; ++c) {
      check_cancelled();
      std::span<float> x = chunk(c);
      if (!advance_hidden) {
        tmp.assign(x.begin(), x.end());
        x = tmp;
      }
      session.forward_layer(il, x, stop_at);
    }
    session.set_observer(nullptr);
    if (advance_hidden && fp_session)
      for (int64_t c = 0; c < n_chunks; ++c) fp_session->forward_layer(il, chunk_fp(c));
  }

  // The dense weight `lead`'s inputs in both runs, chunk by chunk, up to that weight.
  void run_paired(int64_t il, PairedObserver& po, std::string_view lead) {
    std::vector<float> tf, tq;
    for (int64_t c = 0; c < n_chunks; ++c) {
      check_cancelled();
      tf.assign(chunk_fp(c).begin(), chunk_fp(c).end());
      tq.assign(chunk(c).begin(), chunk(c).end());
      po.capture(true);
      fp_session->set_observer(&po);
      fp_session->forward_layer(il, tf, lead);
      fp_session->set_observer(nullptr);
      po.capture(false);
      session.set_observer(&po);
      session.forward_layer(il, tq, lead);
      session.set_observer(nullptr);
    }
  }
};

bool has_grid(const TensorPlan& tp) {
  const quant::Codec* c = quant::find_codec(tp.dst_type);
  return c && c->grid && tp.ne[0] % c->block_size == 0;
}

}  // namespace

quantize::Plan quantize_compensated(const std::string& model_path, std::string_view text,
                                    const std::string& out_path, const Options& o,
                                    Summary* summary_out) {
  auto model = model::Model::load(model_path);
  const gguf::File& file = model->file();
  quantize::check_output_path(model_path, out_path);
  const quantize::Plan plan = quantize::make_plan(file, o.quant);
  const model::Config& cfg = model->config();

  const auto tokenizer = load_tokenizer(file);
  const std::vector<int32_t> tokens = tokenizer->encode(text, true, false);
  const int64_t n_ctx = o.n_ctx > 0 ? o.n_ctx
                        : cfg.n_ctx_train > 0 ? std::min<int64_t>(512, cfg.n_ctx_train) : 512;
  int64_t n_chunks = int64_t(tokens.size()) / n_ctx;
  n_chunks = std::min(n_chunks, o.n_chunks > 0 ? o.n_chunks : std::max<int64_t>(1, kDefaultTokens / n_ctx));
  if (n_chunks < 1)
    throw_error("{}: {} tokens, fewer than one calibration chunk of {} (-c sets the chunk size)",
                o.text_name, tokens.size(), n_ctx);

  model::SessionOptions so;
  so.n_ctx = n_ctx;
  so.n_ubatch = n_ctx;  // one micro-batch per chunk: passes can stop early (forward_layer)
  so.n_threads = o.n_threads;
  so.ggml_rounding = false;  // float arithmetic: the activations, not llama.cpp's last bits
  // The full-precision model: the same mapping of the file, never changed.
  std::unique_ptr<model::Model> fp_model;
  std::unique_ptr<model::Session> fp_session;
  if (o.correct) {
    fp_model = model::Model::share(*model);
    fp_session = std::make_unique<model::Session>(*fp_model, so);
  }
  Run run{o, *model, plan, ThreadPool(o.n_threads), model::Session(*model, so), fp_session.get(),
          n_ctx, n_chunks, cfg.n_embd, {}, {}, {}, 0, 0};
  run.summary.calib_tokens = n_chunks * n_ctx;
  run.steps = cfg.n_layer * 5 + 1;

  std::map<std::string, const TensorPlan*, std::less<>> by_name;
  std::set<std::string, std::less<>> in_model;
  for (const TensorPlan& tp : plan.tensors) {
    in_model.insert(tp.name);
    if (tp.quantize) by_name[tp.name] = &tp;
  }
  auto planned = [&](const std::string& name) -> const TensorPlan* {
    const auto it = by_name.find(name);
    return it == by_name.end() ? nullptr : it->second;
  };

  run.say(fmt::format("error compensation: {} chunks of {} tokens from {}, damping {}", n_chunks,
                      n_ctx, o.text_name, o.damp));
  // The embedding is a lookup: plain rounding, and the layers see it quantized.
  if (const TensorPlan* te = planned("token_embd.weight")) run.plain(*te);
  const int32_t bos = tokenizer->add_bos() ? tokenizer->bos() : -1;
  run.hidden.resize(size_t(n_chunks * n_ctx * cfg.n_embd));
  for (int64_t c = 0; c < n_chunks; ++c) {
    std::vector<int32_t> t(tokens.begin() + c * n_ctx, tokens.begin() + (c + 1) * n_ctx);
    if (bos >= 0) t[0] = bos;
    run.session.embed(t, run.chunk(c));
    if (fp_session) {
      if (c == 0) run.hidden_fp.resize(run.hidden.size());
      fp_session->embed(t, run.chunk_fp(c));
    }
  }

  for (int64_t il = 0; il < cfg.n_layer; ++il) {
    const std::string prefix = fmt::format("blk.{}.", il);
    // Anything of this layer outside the groups (none in llama's layers) is rounded plainly.
    for (auto it = by_name.lower_bound(prefix); it != by_name.end() && it->first.starts_with(prefix); ++it) {
      const std::string kind = it->first.substr(prefix.size(), it->first.rfind(".weight") - prefix.size());
      const bool grouped = std::any_of(kGroups.begin(), kGroups.end(), [&](const auto& g) {
        return std::find(g.begin(), g.end(), kind) != g.end();
      });
      if (!grouped) run.plain(*it->second);
    }
    for (const auto& group : kGroups) {
      std::vector<const TensorPlan*> comp;
      std::string lead;  // the group's first weight: its input is the group's input
      for (std::string_view kind : group) {
        if (kind.empty()) continue;
        const std::string name = fmt::format("{}{}.weight", prefix, kind);
        if (lead.empty() && in_model.contains(name)) lead = name;
        const TensorPlan* tp = planned(name);
        if (!tp) continue;
        if (has_grid(*tp))
          comp.push_back(tp);
        else
          run.plain(*tp);
      }
      // Experts see their routed rows only after the router, and the two runs route tokens
      // differently: no pairing, and those passes run the whole layer.
      const bool experts = lead.find("_exps") != std::string::npos;
      if (!comp.empty() && fp_session && !experts) {
        PairedObserver po(&run.pool);
        po.watch(lead, file.tensor(lead).ne[0]);
        run.run_paired(il, po, lead);
        Hessians hs;
        hs.emplace(std::make_pair(lead, int32_t(-1)), std::move(po.hessian(lead)));
        for (const TensorPlan* tp : comp) run.compensated(*tp, lead, hs, &po.cross(lead));
      } else if (!comp.empty()) {
        HessianObserver obs(&run.pool);
        obs.watch(lead);
        run.run_layer(il, false, &obs, experts ? std::string_view{} : std::string_view(lead));
        for (const TensorPlan* tp : comp) run.compensated(*tp, lead, obs.hessians());
      }
      run.advance();
    }
    run.run_layer(il, true, nullptr);
    run.advance();
  }

  if (const TensorPlan* out = planned("output.weight")) {
    if (has_grid(*out)) {
      PairedObserver po(&run.pool);
      po.watch(out->name, cfg.n_embd);
      Hessian h(cfg.n_embd);
      std::vector<float> xn(size_t(n_ctx * cfg.n_embd)), xf(xn.size());
      for (int64_t c = 0; c < n_chunks; ++c) {
        run.check_cancelled();
        run.session.output_input(run.chunk(c), xn);
        if (fp_session) {
          fp_session->output_input(run.chunk_fp(c), xf);
          po.capture(true);
          po.on_matmul({out->name, cfg.n_embd, n_ctx, xf.data(), -1, 0});
          po.capture(false);
          po.on_matmul({out->name, cfg.n_embd, n_ctx, xn.data(), -1, 0});
        } else {
          h.add(xn.data(), n_ctx, &run.pool);
        }
      }
      Hessians hs;
      hs.emplace(std::make_pair(out->name, int32_t(-1)),
                 fp_session ? std::move(po.hessian(out->name)) : std::move(h));
      run.compensated(*out, out->name, hs, fp_session ? &po.cross(out->name) : nullptr);
    } else {
      run.plain(*out);
    }
  }
  // Whatever is left (no layer tensor: norms are copied; e.g. a quantized rope_freqs).
  for (const auto& [name, tp] : by_name)
    if (model->replaced_weight(name).empty() && name != "output.weight") run.plain(*tp);
  run.advance();

  quantize::Callbacks cb;
  cb.provided = [&](const TensorPlan& tp) { return model->replaced_weight(tp.name); };
  cb.tensor_begin = [&](size_t) { run.check_cancelled(); };
  quantize::write_quantized(file, plan, out_path, o.n_threads, cb);
  run.say(fmt::format("error compensation: {} weights with error feedback, {} rounded plainly",
                      run.summary.compensated, run.summary.plain));
  if (summary_out) *summary_out = run.summary;
  return plan;
}

}  // namespace imq::gptq
