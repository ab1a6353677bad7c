// Importance matrices: the in-memory form shared by the collector, the file formats (GGUF
// imatrix, legacy .dat, mistral.rs .cimatrix), merge, statistics and the quantizer.
//
// Units everywhere in memory are llama.cpp's GGUF-imatrix units (spec a): raw sums of squared
// activations and raw token counts. The legacy formats store means; reading them needs the
// chunk size (tokens per call) to turn means back into sums and counts (spec b).
#pragma once
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace imq::imatrix {

// One weight's data. counts.size() = number of count slots (1 dense, n_expert for expert
// weights); sums.size() is a multiple of counts.size(), slot k owns sums[k*n .. k*n+n-1] with
// n = sums.size()/counts.size(). A slot with count 0 saw no tokens (its sums are 0).
struct Entry {
  std::vector<float> sums;
  std::vector<float> counts;
};

struct Imatrix {
  std::vector<std::string> datasets;
  uint32_t chunk_count = 0;
  uint32_t chunk_size = 0;  // 0: unknown (a GGUF file without imatrix.chunk_size)
  std::map<std::string, Entry> entries;  // by weight name; std::map gives llama.cpp's byte order
};

// --- files ----------------------------------------------------------------------------------

enum class Format { Gguf, Dat, Cimatrix };
std::string_view format_name(Format f);  // "gguf", "dat", "cimatrix"
Format parse_format(std::string_view name);  // throws for other names
// GGUF when the file starts with the GGUF magic; .cimatrix by its name; otherwise legacy .dat.
Format detect_format(const std::string& path);

struct ReadOptions {
  // Tokens per call of the legacy formats: a .dat value v with ncall c becomes
  // sums = v * chunk_size and counts = c * chunk_size (llama-imatrix's -c, default 512).
  uint32_t chunk_size = 512;
  // Load entries holding NaN/Inf sums (for statistics) instead of failing.
  bool allow_non_finite = false;
  // .cimatrix only: the model GGUF whose weights the module paths name (names and shapes are
  // then checked against it), or, without a model, the number of experts of its MoE layers.
  std::string model_path;
  int64_t n_expert = 0;
};

Imatrix read_gguf(const std::string& path, const ReadOptions& opt = {});
// Legacy .dat (current sorted files and old unsorted ones; the trailer is optional).
Imatrix read_dat(const std::string& path, const ReadOptions& opt = {});
// mistral.rs .cimatrix: u64 n_entries; per entry u64 key_len, key, u64 n, f32[n]. The values
// are means up to an unknown per-tensor factor (ncalls is not stored); they are read as
// ncall = 1, i.e. sums = value * chunk_size, counts = chunk_size per slot.
Imatrix read_cimatrix(const std::string& path, const ReadOptions& opt = {});
Imatrix load(const std::string& path, const ReadOptions& opt = {});  // by detect_format
// The GGUF weight name of a mistral.rs module path ("model.layers.2.self_attn.q_proj" ->
// "blk.2.attn_q.weight", "lm_head" -> "output.weight"); "" when it names no known weight.
std::string cimatrix_weight_name(std::string_view module_path);

// Writes the GGUF imatrix byte-identical to llama-imatrix's (atomically). Throws when
// chunk_size is 0 or an entry is malformed.
void write_gguf(const Imatrix& m, const std::string& path);
// Writes the legacy .dat as current llama-imatrix does (spec b): ncall = ceil(max count /
// chunk_size), values = sum / count * ncall (a zero-count slot gives 1 * ncall), sorted
// entries, trailer chunk_count + last dataset. Entries without any data are skipped: their
// names are returned so the caller can warn.
std::vector<std::string> write_dat(const Imatrix& m, const std::string& path, uint32_t chunk_size);
// write_gguf or write_dat (with m.chunk_size); returns the names of skipped entries.
std::vector<std::string> save(const Imatrix& m, const std::string& path, Format format);

// --- checks ---------------------------------------------------------------------------------

// Throws imq::Error naming `source` and the tensor unless every entry has counts, sums that are
// a non-empty multiple of the counts, finite non-negative counts and non-negative sums (finite
// too unless allow_non_finite).
void validate(const Imatrix& m, const std::string& source, bool allow_non_finite = false);

struct CoverageIssue {
  std::string name;
  size_t n_slots = 0;      // count slots of the entry
  size_t n_empty = 0;      // slots with count 0 (experts that never saw a token)
  size_t n_non_finite = 0; // NaN/Inf sums
};
// Entries with empty slots or non-finite sums, by name.
std::vector<CoverageIssue> coverage_issues(const Imatrix& m);
std::string describe(const CoverageIssue& c);  // one line, e.g. "blk.0.ffn_up_exps.weight: ..."

// --- merge ----------------------------------------------------------------------------------

// Adds `b` into `acc` element-wise (sums and counts; a single count is broadcast to n_expert
// slots), appends b's datasets and recomputes chunk_count = max count / chunk_size. A size
// mismatch throws naming the tensor and both sources. Chunk sizes are not checked here.
void accumulate(Imatrix& acc, const Imatrix& b, std::string_view acc_name, std::string_view b_name);
// max over all count slots / chunk_size (0 when chunk_size is 0).
uint32_t chunks_in(const Imatrix& m);

struct MergeInput {
  std::string path;
  Imatrix data;
};
struct MergeOptions {
  uint32_t chunk_size = 0;           // > 0: label the output with it; 0: the inputs' common one
  bool allow_chunk_size_mismatch = false;  // else inputs with different chunk sizes throw
};
// Sums all inputs in order (llama-imatrix's combine-only run).
Imatrix merge(std::span<const MergeInput> inputs, const MergeOptions& opt = {});

// --- statistics (spec d, llama-imatrix --show-statistics) -----------------------------------

struct TensorStatistics {
  std::string name;      // weight name
  int layer = -1;        // block number, -1 outside blocks
  std::string kind;      // the component before "weight" ("attn_q", "ffn_down_exps")
  float sum = 0;         // Σ(Act²): Σ a over the mean squared activations a = sum / count
  float min = 0, max = 0;
  float mean = 0;        // μ = Σ a / N
  float stddev = 0;      // σ, population
  float active = 0;      // % of |a| > 1e-5
  int64_t n = 0;         // N = columns x slots with data; 0: the entry has no data at all
  float entropy = 0;     // bits, of p = a / Σ a
  float entropy_norm = 0;  // % of log2(N)
  float zd = 0;          // fraction of (a - μ)/σ > 1
  float cossim = 0;      // raw sums vs the same tensor one block earlier; 0 if none
  size_t n_slots = 1, n_empty = 0;
  size_t n_non_finite = 0;  // NaN/Inf sums: statistics then skip those elements
};
struct LayerStatistics {
  int layer = 0;
  float sum = 0;     // Σ N·Σ(Act²) / Σ N
  float zd = 0;      // Σ N·ZD / Σ N (a fraction)
  float cossim = 0;  // Σ N·CosSim / Σ N
};
struct Statistics {
  std::vector<TensorStatistics> tensors;  // llama.cpp's order: by kind, then Σ(Act²) descending
  std::vector<LayerStatistics> layers;    // by block number
};
// float32 accumulation in element order, as llama-imatrix, so printed numbers agree.
Statistics compute_statistics(const Imatrix& m);
// llama-imatrix's two tab-separated tables (without its log prefixes).
std::string format_statistics(const Statistics& s, const std::string& file_name);
std::string statistics_json(const Statistics& s, const Imatrix& m, const std::string& file_name);

}  // namespace imq::imatrix
