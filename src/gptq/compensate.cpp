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
#include "gptq/embedding.h"
#include "gptq/hessian.h"
#include "gptq/solver.h"
#include "imq/error.h"
#include "imq/model.h"
#include "imq/quant.h"
#include "imq/tokenizer.h"
#include "quant/grid.h"

namespace imq::gptq {
namespace {

using quantize::TensorPlan;

// Calibration tokens without --calibration-chunks. More keep helping, less and less
// (dict8-spm4k layers only, chunks of 256, wiki / dict-heldout KLD: Q2_K 0.0223 at 8k tokens,
// 0.0188 / 0.0191 at 16k, 0.0177 / 0.0180 at 32k; Q4_K_M 0.00139 / 0.00134 at 16k, 0.00133 /
// 0.00127 at 32k) while the time of the passes grows in proportion (bench/README.md). 32k is
// where dict8-spm4k's Q2_K first stays at half llama.cpp's KLD on both texts.
constexpr int64_t kDefaultTokens = 32768;

// The weights of one layer in the order the forward pass multiplies them; each group shares
// one observation pass.
constexpr std::array<std::array<std::string_view, 4>, 4> kGroups{{
    {"attn_q", "attn_k", "attn_v", ""},
    {"attn_output", "", "", ""},
    {"ffn_gate", "ffn_up", "ffn_gate_exps", "ffn_up_exps"},
    {"ffn_down", "ffn_down_exps", "", ""},
}};

using Hessians = std::map<std::pair<std::string, int32_t>, Hessian>;

// One group of a layer: its lead (the first weight: its input is the group's input) and the
// weights quantized with error feedback (the others are rounded plainly beforehand).
struct Group {
  std::string lead;
  std::vector<const TensorPlan*> comp;
  // Experts see their routed rows only after the router, and the two runs route tokens
  // differently: no pairing, and their passes run the whole layer.
  bool experts() const { return lead.find("_exps") != std::string::npos; }
};

// Passes a matmul event on, and keeps a copy of the input of one weight.
struct Keep : MatmulObserver {
  MatmulObserver* inner;
  std::string_view weight;
  float* dst;
  Keep(MatmulObserver* i, std::string_view w, float* d) : inner(i), weight(w), dst(d) {}
  void on_matmul(const MatmulEvent& e) override {
    if (e.expert < 0 && e.weight == weight) std::copy(e.x, e.x + e.n_rows * e.ne0, dst);
    if (inner) inner->on_matmul(e);
  }
};

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
  std::vector<float> stage, stage_fp;  // dense_layer: each chunk's input of the current stage
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

  // The tensor's rows as floats.
  std::vector<float> dequantized(const TensorPlan& tp) const {
    const gguf::File& f = model.file();
    const auto bytes = f.tensor_data(f.tensor(tp.name));
    std::vector<float> w(size_t(tp.n_elements()));
    if (tp.src_type == GgmlType::F32)
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
  // g: G = (X − X̃)ᵀX̃ of a dense weight's paired runs, or W G itself when `wg`, or null (no
  // correction).
  void compensated(const TensorPlan& tp, const std::string& lead, Hessians& hs,
                   const std::vector<float>* g = nullptr, bool wg = false) {
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
      if (tokens >= min_tokens && o.act_order)
        f.order = importance_order(it->second.diagonal(), codec.block_size, codec.grid->group);
      if (tokens < min_tokens)
        why = fmt::format("{} tokens (< {})", tokens, min_tokens);
      else if (!factor_hessian(it->second, o.damp, f))
        why = "H is not positive definite even with 1000x the damping";
      else if (g)
        correct_toward(f, wg ? *g : times(we, *g, rows, n, pool), we, rows, pool);
      if (!why.empty()) {
        const bool imq = quantize::tensor_search(tp, plan.search) == quantize::Search::kImq;
        const auto fn = imq && codec.quantize_imq ? codec.quantize_imq : codec.quantize;
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

  // A dense layer, group by group, each side (full precision, then quantized) taken from one
  // stop to the next chunk by chunk (Session::resume_layer) with the stage's input kept per
  // chunk: every product of the layer is computed once per side, and the bits are those of
  // running each side from the layer's start up to each group's weight.
  void dense_layer(int64_t il, const std::vector<Group>& groups) {
    using Stage = model::Session::LayerStage;
    const model::Config& c = model.config();
    // Where each step starts: steps 0 and 1 run from the layer's start (forward_layer) up to
    // attn_q / attn_output; steps 2, 3, 4 resume at attn_output, ffn_gate, ffn_down with the
    // input the step before kept (of these widths).
    struct From {
      Stage stage;
      int64_t width;
    };
    const From from[] = {{Stage::kAttnOutput, c.n_head * c.head_dim},
                         {Stage::kFfnGate, c.n_embd},
                         {Stage::kFfnDown, c.n_ff}};
    const int64_t width = std::max({c.n_head * c.head_dim, c.n_embd, c.n_ff});
    const size_t per_chunk = size_t(n_ctx * width);
    stage.resize(per_chunk * size_t(n_chunks));
    if (fp_session) stage_fp.resize(stage.size());
    for (size_t gi = 0; gi <= groups.size(); ++gi) {
      const bool last = gi == groups.size();  // the step that finishes the layer
      const Group* g = last ? nullptr : &groups[gi];
      PairedObserver po(&pool);
      HessianObserver ho(&pool);
      MatmulObserver* obs = nullptr;
      // A lone weight with fewer rows than half its inputs (ffn_down): W G is accumulated
      // directly, at less cost than G (hessian.h).
      std::vector<float> w_lead;
      if (g && !g->comp.empty()) {
        const int64_t n = model.file().tensor(g->lead).ne[0];
        const TensorPlan& tp = *g->comp.front();
        if (fp_session && g->comp.size() == 1 && tp.name == g->lead && 2 * tp.ne[1] < n) {
          w_lead = dequantized(tp);
          po.watch(g->lead, n, w_lead.data(), tp.ne[1]), obs = &po;
        } else if (fp_session) {
          po.watch(g->lead, n), obs = &po;
        } else {
          ho.watch(g->lead), obs = &ho;
        }
      }
      const std::string_view stop = g ? std::string_view(g->lead) : std::string_view{};
      auto step = [&](model::Session& s, std::span<float> x, float* kept, MatmulObserver* inner) {
        Keep keep(inner, stop, kept);
        s.set_observer(&keep);
        bool stopped = true;
        if (gi <= 1) {
          s.forward_layer(il, x, stop);  // x stays the layer's input
        } else {
          const From& f = from[gi - 2];
          stopped = s.resume_layer(il, f.stage, x, {kept, size_t(n_ctx * f.width)}, stop);
        }
        s.set_observer(nullptr);
        if (stopped == last) throw_error("blk.{}: the layer did not stop at {}", il, stop);
      };
      for (int64_t ch = 0; ch < n_chunks; ++ch) {
        check_cancelled();
        if (fp_session) {
          po.capture(true);
          step(*fp_session, chunk_fp(ch), stage_fp.data() + size_t(ch) * per_chunk, obs ? &po : nullptr);
          po.capture(false);
        }
        step(session, chunk(ch), stage.data() + size_t(ch) * per_chunk, obs);
      }
      if (!obs) {
        if (!last) advance();
        continue;
      }
      Hessians hs;
      const std::vector<float>* cross = nullptr;
      if (fp_session) {
        hs.emplace(std::make_pair(g->lead, int32_t(-1)), std::move(po.hessian(g->lead)));
        cross = &po.cross(g->lead);
      } else {
        hs = std::move(ho.hessians());
      }
      for (const TensorPlan* tp : g->comp) compensated(*tp, g->lead, hs, cross, !w_lead.empty());
      advance();
    }
  }

  // A MoE layer: each group's inputs from a pass from the layer's start, then the layer.
  void moe_layer(int64_t il, const std::vector<Group>& groups) {
    for (const Group& g : groups) {
      const std::string& lead = g.lead;
      if (!g.comp.empty() && fp_session && !g.experts()) {
        PairedObserver po(&pool);
        po.watch(lead, model.file().tensor(lead).ne[0]);
        run_paired(il, po, lead);
        Hessians hs;
        hs.emplace(std::make_pair(lead, int32_t(-1)), std::move(po.hessian(lead)));
        for (const TensorPlan* tp : g.comp) compensated(*tp, lead, hs, &po.cross(lead));
      } else if (!g.comp.empty()) {
        HessianObserver obs(&pool);
        obs.watch(lead);
        run_layer(il, false, &obs, g.experts() ? std::string_view{} : std::string_view(lead));
        for (const TensorPlan* tp : g.comp) compensated(*tp, lead, obs.hessians());
      }
      advance();
    }
    run_layer(il, true, nullptr);
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
    throw_error("{}: {} tokens, fewer than one calibration chunk of {} (--calibration-ctx sets the chunk size)",
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
          n_ctx, n_chunks, cfg.n_embd, {}, {}, {}, {}, {}, 0, 0};
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
  // The embedding is a lookup: plain rounding, and the layers see it quantized. No imatrix
  // covers it; its columns are weighed by what an error in them costs the weights that read
  // the residual stream (gptq/embedding.h).
  if (const TensorPlan* te = planned("token_embd.weight")) {
    TensorPlan t = *te;
    if (t.importance.empty() && t.ne[2] == 1) {
      t.importance = embedding_importance(file, cfg.n_embd, cfg.n_layer);
      if (int64_t(t.importance.size()) == t.ne[0]) {
        t.importance_use = quantize::ImportanceUse::kUsed;
        run.say("token_embd.weight: rounded with importance from the weights that read it");
      } else {
        t.importance.clear();
      }
    }
    run.plain(t);
  }
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
  if (file.find_tensor("output.weight"))  // else token_embd is also the output's weight
    if (const gguf::TensorInfo* te = file.find_tensor("token_embd.weight")) file.drop_pages(*te);

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
    std::vector<Group> groups;
    for (const auto& kinds : kGroups) {
      Group& g = groups.emplace_back();
      for (std::string_view kind : kinds) {
        if (kind.empty()) continue;
        const std::string name = fmt::format("{}{}.weight", prefix, kind);
        if (g.lead.empty() && in_model.contains(name)) g.lead = name;
        const TensorPlan* tp = planned(name);
        if (!tp) continue;
        if (has_grid(*tp))
          g.comp.push_back(tp);
        else
          run.plain(*tp);
      }
    }
    if (cfg.is_moe())
      run.moe_layer(il, groups);
    else
      run.dense_layer(il, groups);
    run.advance();
    // Nothing reads the layer's full-precision weights again (its quantized ones are held for
    // the output): their mapped pages leave the RSS, which so stays within the model's size
    // plus one layer's working set (bench/README.md).
    for (const gguf::TensorInfo& t : file.tensors())
      if (t.name.starts_with(prefix)) file.drop_pages(t);
  }

  run.stage = {}, run.stage_fp = {};  // the layers' working set, before the output's
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
