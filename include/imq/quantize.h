// imq quantize: llama-quantize's per-tensor type choice (the "mixes", spec e/f) and a
// multithreaded runner that writes the quantized GGUF byte for byte like llama-quantize.
//
//   Plan plan = make_plan(model, options);     // types, order, offsets, metadata; no codec runs
//   write_quantized(model, plan, out_path, n_threads, callbacks);
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "imq/gguf.h"

namespace imq::imatrix {
struct Imatrix;
}

namespace imq::quantize {

// llama_ftype ids (spec g.2): the TYPE argument and the output's general.file_type.
enum class FType : uint32_t {
  ALL_F32 = 0, MOSTLY_F16 = 1, Q4_0 = 2, Q4_1 = 3, Q8_0 = 7, Q5_0 = 8, Q5_1 = 9, Q2_K = 10,
  Q3_K_S = 11, Q3_K_M = 12, Q3_K_L = 13, Q4_K_S = 14, Q4_K_M = 15, Q5_K_S = 16, Q5_K_M = 17,
  Q6_K = 18, IQ2_XXS = 19, IQ2_XS = 20, Q2_K_S = 21, IQ3_XS = 22, IQ3_XXS = 23, IQ1_S = 24,
  IQ4_NL = 25, IQ3_S = 26, IQ3_M = 27, IQ2_S = 28, IQ2_M = 29, IQ4_XS = 30, IQ1_M = 31,
  MOSTLY_BF16 = 32,
  // imq's own mixes (docs/FORMATS.md): ids from 2000 on, far from llama.cpp's (< 1024).
  Q3_HIFI = 2000, Q3_HIFI_M = 2001,
};

struct FTypeInfo {
  std::string_view name;         // as llama-quantize lists it, e.g. "Q4_K_M" (aliases: "Q4_K")
  FType ftype;
  GgmlType default_type;         // the type the mix starts from
  std::string_view description;  // short size/quality note for the usage listing
};

// Every accepted TYPE in llama-quantize's listing order (aliases included).
std::span<const FTypeInfo> ftypes();
// Parses a TYPE argument: a name (case-insensitive, aliases Q3_K/Q4_K/Q5_K) or a numeric
// ftype id. Throws imq::Error listing the valid names.
const FTypeInfo& parse_ftype(std::string_view s);
// Parses a ggml tensor type name for --output-tensor-type / --token-embedding-type
// ("q6_K", "Q8_0", "f16", case-insensitive). Throws listing the types imq can write.
GgmlType parse_tensor_type(std::string_view s);

// One --tensor-type PATTERN=TYPE: tensors whose name matches the regular expression PATTERN
// (searched anywhere in the name, ECMAScript syntax, as llama-quantize's std::regex_search)
// get TYPE instead of the mix's choice; the first matching pattern wins.
struct TensorTypeOverride {
  std::string pattern;  // lower-cased as llama-quantize does
  GgmlType type = GgmlType::F32;
};
// Parses "PATTERN=TYPE" (TYPE as parse_tensor_type). Throws naming what is missing.
TensorTypeOverride parse_tensor_type_override(std::string_view s);
// Reads --tensor-type-file: PATTERN=TYPE entries separated by whitespace or newlines; lines
// starting with '#' are comments. Throws naming the file and the entry.
std::vector<TensorTypeOverride> read_tensor_type_file(const std::string& path);

// How a codec searches for the block values. kReference: llama.cpp's, byte for byte.
// kImq: imq's own search (quant::Codec::quantize_imq) where a type has one (the K-quants),
// the reference elsewhere and on tensors an imatrix has no entry for (tensor_search); same
// file layout, lower weighted block error, more compute.
enum class Search { kReference, kImq };
Search parse_search(std::string_view s);  // "reference" or "imq"; throws otherwise

// Which 8 weights of each Q3_HIFI block are stored exactly (--q3-hifi-outliers).
// kSaving: those whose removal lowers the block's importance-weighted error the most, the
// 3-bit scales re-fitted (imq's default); kMagnitude: the 8 largest |x_i| * w_i (the fork's
// rule, as its users know it); kJoint: imq's earlier swap search. Applies to plain rounding;
// error-compensated quantization (--calibration-file) always uses kSaving.
enum class Q3HifiOutliers { kSaving, kMagnitude, kJoint };
Q3HifiOutliers parse_q3_hifi_outliers(std::string_view s);  // "saving", "magnitude", "joint"

struct Options {
  FType ftype = FType::Q4_K_M;
  std::string imatrix_path;                    // "" = quantize without importance
  // An imatrix in memory instead of a file (in-situ quantization); not owned, used by make_plan
  // only. imatrix_path then only names it in the output's quantize.imatrix.file ("" : none).
  const imatrix::Imatrix* imatrix = nullptr;
  std::vector<std::string> include_weights;    // keep only imatrix entries containing one of these
  std::vector<std::string> exclude_weights;    // drop imatrix entries containing any of these
  std::optional<GgmlType> output_tensor_type;  // forces output.weight (bypasses fallback)
  std::optional<GgmlType> token_embedding_type;
  std::vector<TensorTypeOverride> tensor_types;  // --tensor-type, in command-line order
  bool pure = false;                 // no mix rules: every quantized tensor gets the default type
  bool leave_output_tensor = false;  // keep output.weight in its input type
  bool allow_requantize = false;     // accept already quantized inputs (dequantized first)
  bool dry_run = false;              // plan only: a missing required imatrix only warns
  Search search = Search::kReference;
  Q3HifiOutliers q3_hifi_outliers = Q3HifiOutliers::kSaving;
};

// What happened to the imatrix lookup of one tensor (llama-quantize's notes).
enum class ImportanceUse : uint8_t {
  kNone,          // no imatrix, or the tensor is copied
  kUsed,          // importance vector attached
  kMissing,       // "did not find weights for X": quantized without
  kSizeMismatch,  // token_embd.weight only: entry of the wrong length ignored
};

struct TensorPlan {
  std::string name;
  uint32_t n_dims = 1;              // as written (ggml_n_dims)
  int64_t ne[4] = {1, 1, 1, 1};
  GgmlType src_type = GgmlType::F32;
  GgmlType dst_type = GgmlType::F32;
  bool quantize = false;            // dst differs from src: rows go through a codec
  std::optional<GgmlType> fallback_from;  // the rule's type when the shape forced another
  bool type_forced = false;         // from --tensor-type / --output-tensor-type /
                                    // --token-embedding-type rather than the mix rule
  ImportanceUse importance_use = ImportanceUse::kNone;
  std::vector<float> importance;    // ne0 * ne2 weights when kUsed (expert e: slice e*ne0)
  uint64_t src_bytes = 0;
  uint64_t dst_bytes = 0;
  uint64_t offset = 0;              // in the output's data section

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  // Data size of this tensor stored as `type` (ne0 a multiple of its block size).
  uint64_t bytes_as(GgmlType type) const;
};

// The search that tensor tp gets under `search`: kImq falls back to the reference search on a
// tensor the imatrix has no entry for (kMissing: token_embd, output), where imq's objective
// has no importance to go on (llama.cpp's heuristic weights instead), and lowering it did
// not lower the KL divergence: the MoE test model's token_embd at Q2_K had lower plain,
// |x|-weighted, per-row and per-column errors than llama.cpp's, yet made the whole-model
// KLD 1.13x llama.cpp's (bench/README.md). Without an imatrix every tensor keeps `search`.
Search tensor_search(const TensorPlan& tp, Search search);

struct ImatrixSummary {
  std::string file;                   // as given on the command line
  std::vector<std::string> datasets;
  size_t n_entries = 0;               // after --include/--exclude-weights
  uint32_t chunk_count = 0;
};

struct Plan {
  FTypeInfo ftype;
  Search search = Search::kReference;
  Q3HifiOutliers q3_hifi_outliers = Q3HifiOutliers::kSaving;
  std::vector<gguf::KeyValue> kvs;    // output metadata, in file order
  std::vector<TensorPlan> tensors;    // output order: (block, name)
  uint64_t alignment = 32;
  uint64_t data_offset = 0;           // absolute offset of the data section
  uint64_t file_size = 0;             // exact size of the output file
  std::optional<ImatrixSummary> imatrix;  // set when importance data is in use
  size_t n_fallback = 0;
  uint64_t src_bytes = 0;             // sum of tensor sizes in / out (llama's "model size")
  uint64_t dst_bytes = 0;
  int64_t n_elements = 0;
  std::vector<std::string> warnings;  // one line each (e.g. token_embd size mismatch)
};

// Decides every output tensor's type, order and offset, and the output metadata. Loads the
// imatrix named in `opt`. Throws imq::Error (naming the tensor) for anything that would make
// the run fail: unknown or unsupported shapes, requantization without permission, an imatrix
// that belongs to another model, types that need an imatrix.
Plan make_plan(const gguf::File& model, const Options& opt);

// Throws imq::Error when `out` is the input file itself or its directory does not exist
// (write_quantized checks this too; a CLI calls it before printing anything).
void check_output_path(const std::string& in, const std::string& out);

struct Callbacks {
  std::function<void(size_t index)> tensor_begin;  // plan.tensors[index] starts
  std::function<void(size_t index)> tensor_done;
  // Elements processed so far over all tensors to convert, and the total.
  std::function<void(uint64_t done, uint64_t total)> progress;
  // Bytes already quantized for a planned tensor (its dst_bytes, e.g. by error-compensated
  // quantization); empty: the runner converts it.
  std::function<std::span<const uint8_t>(const TensorPlan&)> provided;
  // Asked before each tensor; true stops the run with an imq::Error, the output untouched and
  // its temporary file removed (a CLI sets it from SIGINT/SIGTERM).
  std::function<bool()> cancelled;
};

// Runs the plan: converts every tensor (rows split over n_threads; the bytes do not depend on
// the thread count) and writes `out_path` atomically (temporary file + rename; nothing is left
// behind on error). n_threads <= 0: all hardware threads.
void write_quantized(const gguf::File& model, const Plan& plan, const std::string& out_path,
                     int n_threads, const Callbacks& cb = {});

// Converts the planned tensor `tp` of `model` (its source data and importance) to `type` in
// memory with `search`, rows over n_threads. Throws naming the tensor when the type cannot hold
// its rows. For measuring a type choice before writing anything (imq's mix tuner).
std::vector<uint8_t> quantize_tensor(const gguf::File& model, const TensorPlan& tp,
                                     GgmlType type, Search search, int n_threads);

// The type llama-quantize would actually write for `type` on a tensor whose rows have ne0
// values: `type` itself, or its shape fallback (Q4_K -> Q5_0, ...); nullopt when none fits.
std::optional<GgmlType> fitted_type(std::string_view name, int64_t ne0, GgmlType type);

}  // namespace imq::quantize
