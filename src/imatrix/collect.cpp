// The collection run (spec c.3 - c.5): llama-perplexity's chunk loop with the Collector attached,
// saving whole chunks periodically, stopping cleanly on request or on NaN/Inf.
#include <algorithm>
#include <filesystem>

#include "imatrix/collector.h"
#include "imq/error.h"
#include "imq/gguf.h"
#include "imq/imatrix_collect.h"
#include "imq/model.h"

namespace imq::imatrix {

namespace {

void check_output_dir(const std::string& path) {
  if (path.empty()) return;
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(path).has_parent_path() ? fs::path(path).parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw_error("{}: output directory {} does not exist", path, dir.string());
}

// The imatrix to continue must be this model's: checked before any chunk runs, naming it.
void check_start_matches(const model::Model& model, const Imatrix& start, const std::string& name) {
  const gguf::File& f = model.file();
  const std::string source = name.empty() ? std::string("the imatrix continued") : name;
  size_t n_found = 0;
  for (const auto& [weight, e] : start.entries) {
    const gguf::TensorInfo* t = f.find_tensor(weight);
    if (!t) continue;
    ++n_found;
    const uint64_t slots = t->n_dims >= 3 ? uint64_t(t->ne[2]) : 1;
    if (e.sums.size() != uint64_t(t->ne[0]) * slots || (e.counts.size() != slots && e.counts.size() != 1))
      throw_error("{}: tensor {}: {} values in {} slots, the model {} needs {} x {} slots: is the imatrix "
                  "from another model?", source, weight, e.sums.size(), e.counts.size(), f.path(), t->ne[0], slots);
  }
  if (!start.entries.empty() && n_found == 0)
    throw_error("{}: none of its {} entries (first: {}) names a tensor of {}: is the imatrix from another model?",
                source, start.entries.size(), start.entries.begin()->first, f.path());
}

}  // namespace

CollectResult collect(const model::Model& model, std::span<const int32_t> tokens, int32_t bos,
                      Imatrix start, const CollectOptions& opt, const CollectHooks& hooks) {
  const int64_t n_ctx = opt.n_ctx;
  if (n_ctx < 2) throw_error("context size {} is too small (need at least 2)", n_ctx);
  if (start.chunk_size != 0 && int64_t(start.chunk_size) != n_ctx)
    throw_error("the imatrix to continue was collected with {} tokens per chunk, this run uses -c {}",
                start.chunk_size, n_ctx);
  if (opt.first_chunk < 0) throw_error("--chunk {}: must not be negative", opt.first_chunk);
  check_output_dir(opt.output);
  check_start_matches(model, start, opt.start_name);
  const int64_t n_tokens = int64_t(tokens.size());
  if (opt.first_chunk > 0 && (opt.first_chunk + 2) * n_ctx >= n_tokens)
    throw_error("--chunk {}: the text has {} tokens; skipping {} chunks of {} leaves fewer than the {} needed",
                opt.first_chunk, n_tokens, opt.first_chunk, n_ctx, 2 * n_ctx + 1);
  const auto rest = tokens.subspan(size_t(opt.first_chunk * n_ctx));

  eval::ChunkOptions co;
  co.n_ctx = n_ctx;
  co.n_chunks = opt.n_chunks;
  // Logits of every position only where output.weight is collected (llama-imatrix's output
  // projection sees every token); the last layer sees every token anyway (full_last_layer).
  co.all_logits = opt.process_output;
  co.bos = bos;
  co.text_name = opt.dataset;
  const int64_t n_chunks = eval::chunk_count(int64_t(rest.size()), co);

  if (!opt.dataset.empty()) start.datasets.push_back(opt.dataset);
  start.chunk_size = uint32_t(n_ctx);
  Collector col(std::move(start), opt.process_output, hooks.stop);
  col.set_chunk_index(opt.first_chunk + 1);

  model::SessionOptions so;
  so.n_ctx = n_ctx;
  so.n_ubatch = std::clamp<int64_t>(opt.n_ubatch, 1, n_ctx);
  so.n_threads = opt.n_threads;
  so.full_last_layer = true;
  so.f16_keys = opt.f16_keys;
  so.f16_values = opt.f16_values;
  so.ggml_cpu = opt.ggml_cpu;
  so.exact_products = opt.exact_products;
  model::Session session(model, so);
  session.set_observer(&col);

  auto save_to = [&](const std::string& path) {
    Imatrix& m = col.totals();
    m.chunk_count = chunks_in(m);
    if (m.entries.empty()) return;
    save(m, path, opt.format);
    if (hooks.on_save) hooks.on_save(path, m.chunk_count);
  };

  // A failed periodic save must not throw away hours of collection: report it and go on.
  auto periodic_save = [&](const std::string& path) {
    try {
      save_to(path);
    } catch (const Error& e) {
      if (hooks.on_save_failed) hooks.on_save_failed(path, col.totals().chunk_count, e.what());
    }
  };

  CollectResult res;
  try {
    eval::perplexity(session, rest, co, [&](const eval::ChunkView& v) {
      col.end_chunk();
      res.chunks_done = v.index + 1;
      res.nll = v.totals;
      const int64_t cc = chunks_in(col.totals());
      if (!opt.output.empty() && opt.output_frequency > 0 && cc % opt.output_frequency == 0) periodic_save(opt.output);
      if (!opt.output.empty() && opt.save_frequency > 0 && cc % opt.save_frequency == 0)
        periodic_save(opt.output + ".at_" + std::to_string(cc));
      if (hooks.on_chunk) hooks.on_chunk({res.chunks_done, n_chunks, uint32_t(cc), v.totals});
    });
  } catch (const CollectionStopped&) {
    col.drop_chunk();
    res.stopped = true;
  } catch (const NonFiniteActivations& e) {
    col.drop_chunk();
    if (res.chunks_done == 0 || opt.output.empty()) throw;
    save_to(opt.output);
    throw_error("{}; the {} chunks before it are saved in {} (continue after it with --chunk {} --in-file {})",
                e.what(), res.chunks_done, opt.output, opt.first_chunk + res.chunks_done + 1, opt.output);
  }
  session.set_observer(nullptr);
  if (!opt.output.empty() && res.chunks_done > 0) save_to(opt.output);
  col.totals().chunk_count = chunks_in(col.totals());
  res.data = std::move(col.totals());
  return res;
}

std::string coverage_summary(const Imatrix& m) {
  int64_t max_count = 0;
  for (const auto& [name, e] : m.entries)
    for (float c : e.counts) max_count = std::max<int64_t>(max_count, int64_t(c));
  std::string s = fmt::format("coverage: {} weights, {} chunks of {} tokens ({} tokens)", m.entries.size(),
                              m.chunk_count, m.chunk_size, max_count);
  const auto issues = coverage_issues(m);
  if (issues.empty()) return s + "; every weight and expert saw tokens";
  s += fmt::format("; {} weights lack data:", issues.size());
  for (size_t i = 0; i < issues.size() && i < 4; ++i)
    s += fmt::format(" {} ({} of {} slots empty){}", issues[i].name, issues[i].n_empty, issues[i].n_slots,
                     i + 1 < issues.size() ? "," : "");
  if (issues.size() > 4) s += " ...";
  return s;
}

}  // namespace imq::imatrix
