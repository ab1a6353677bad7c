// write_quantized: runs a plan. Tensors are converted one at a time in output order and
// streamed into the GGUF writer; each tensor's rows are split over the thread pool. Rows are
// quantized independently, so the bytes do not depend on the thread count.
#include <atomic>
#include <cstring>
#include <filesystem>
#include <functional>

#include "core/thread_pool.h"
#include "imq/error.h"
#include "imq/quant.h"
#include "imq/quantize.h"
#include "quantize/plan_internal.h"
#include "quantize/search.h"

namespace imq::quantize {

namespace {

constexpr int64_t kChunkElements = 32 * 512;  // rows are handed to a codec in ~64 KiB batches

// Everything one tensor conversion needs, shared by the worker threads.
struct Job {
  const TensorPlan& tp;
  std::span<const uint8_t> src;      // input tensor bytes
  uint8_t* dst;                      // output tensor bytes
  const quant::Codec* src_codec;     // null when the input is F32
  size_t src_row_bytes, dst_row_bytes;
};

void convert_rows(const Job& job, const RowQuantizer& rq, int64_t r0, int64_t r1,
                  std::vector<float>& f32) {
  const TensorPlan& tp = job.tp;
  const int64_t n_per_row = tp.ne[0], rows_per_matrix = tp.ne[1];
  const int64_t chunk_rows = std::max<int64_t>(1, kChunkElements / n_per_row);
  while (r0 < r1) {
    const int64_t matrix = r0 / rows_per_matrix;  // an expert of a 3-D tensor
    const int64_t end = std::min({r1, (matrix + 1) * rows_per_matrix, r0 + chunk_rows});
    const int64_t n = end - r0;
    const uint8_t* src = job.src.data() + size_t(r0) * job.src_row_bytes;
    const float* rows;
    if (job.src_codec) {  // F16, BF16 or (with --allow-requantize) a quantized input
      f32.resize(size_t(n * n_per_row));
      job.src_codec->dequantize(src, f32.data(), n * n_per_row);
      rows = f32.data();
    } else if (reinterpret_cast<uintptr_t>(src) % alignof(float) == 0) {
      rows = reinterpret_cast<const float*>(src);
    } else {
      f32.resize(size_t(n * n_per_row));
      std::memcpy(f32.data(), src, size_t(n) * job.src_row_bytes);
      rows = f32.data();
    }
    const float* imp = tp.importance.empty()
                           ? nullptr
                           : tp.importance.data() + size_t(matrix % tp.ne[2]) * size_t(n_per_row);
    const size_t got = rq.quantize(tp.dst_type, rows, job.dst + size_t(r0) * job.dst_row_bytes, n,
                                   n_per_row, imp);
    if (got != size_t(n) * job.dst_row_bytes)
      throw_error("tensor {}: codec {} wrote {} bytes for {} rows, expected {}", tp.name,
                  ggml_type_display_name(tp.dst_type), got, n, size_t(n) * job.dst_row_bytes);
    r0 = end;
  }
}

// Converts tensor tp of `model` to tp.dst_type into dst (tp.dst_bytes), rows split over the
// pool; on_rows(elements, thread) after each batch.
void convert_tensor(const gguf::File& model, const TensorPlan& tp, const RowQuantizer& rq,
                    ThreadPool& pool, std::vector<std::vector<float>>& buffers, uint8_t* dst,
                    const std::function<void(uint64_t, int)>& on_rows) {
  const std::span<const uint8_t> bytes = model.tensor_data(model.tensor(tp.name));
  const quant::Codec* src_codec =
      tp.src_type == GgmlType::F32 ? nullptr : &quant::codec(tp.src_type);
  auto src_info = ggml_type_info(tp.src_type), dst_info = ggml_type_info(tp.dst_type);
  Job job{tp, bytes, dst, src_codec,
          size_t(tp.ne[0] / src_info->block_size) * src_info->type_size,
          size_t(tp.ne[0] / dst_info->block_size) * dst_info->type_size};
  const int64_t n_rows = tp.ne[1] * tp.ne[2] * tp.ne[3];
  pool.parallel_for(size_t(n_rows), [&](size_t b, size_t e, int thread) {
    const int64_t step = std::max<int64_t>(1, kChunkElements / tp.ne[0]);
    for (int64_t r = int64_t(b); r < int64_t(e); r += step) {
      const int64_t r_end = std::min<int64_t>(int64_t(e), r + step);
      convert_rows(job, rq, r, r_end, buffers[size_t(thread)]);
      if (on_rows) on_rows(uint64_t((r_end - r) * tp.ne[0]), thread);
    }
  });
}

}  // namespace

std::vector<uint8_t> quantize_tensor(const gguf::File& model, const TensorPlan& planned,
                                     GgmlType type, Search search, int n_threads) {
  TensorPlan tp = planned;
  tp.dst_type = type;
  const auto info = ggml_type_info(type);
  if (!info || tp.ne[0] % info->block_size != 0)
    throw_error("tensor {}: cannot be stored as {} (row length {})", tp.name,
                ggml_type_display_name(type), tp.ne[0]);
  if (tp.src_type != GgmlType::F32 && !quant::find_codec(tp.src_type))
    throw_error("tensor {}: cannot read type {} (no codec)", tp.name,
                ggml_type_display_name(tp.src_type));
  const auto rq = make_row_quantizer(tensor_search(planned, search));
  rq->require(type);
  std::vector<uint8_t> out(tp.bytes_as(type));
  ThreadPool pool(n_threads);
  std::vector<std::vector<float>> buffers(size_t(pool.size()));
  convert_tensor(model, tp, *rq, pool, buffers, out.data(), {});
  return out;
}

void check_output_path(const std::string& in, const std::string& out) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const bool same = fs::exists(out, ec) ? fs::equivalent(in, out, ec)
                                        : fs::weakly_canonical(in, ec) == fs::weakly_canonical(out, ec);
  if (same) throw_error("{}: output file is the input file", out);
  const fs::path dir = fs::path(out).has_parent_path() ? fs::path(out).parent_path() : fs::path(".");
  if (!fs::is_directory(dir, ec)) throw_error("{}: output directory {} does not exist", out, dir.string());
}

void write_quantized(const gguf::File& model, const Plan& plan, const std::string& out_path,
                     int n_threads, const Callbacks& cb) {
  check_output_path(model.path(), out_path);
  const auto rq = make_row_quantizer(plan.search, plan.q3_hifi_outliers);
  const auto rq_ref = make_row_quantizer(Search::kReference, plan.q3_hifi_outliers);
  auto quantizer_of = [&](const TensorPlan& tp) -> const RowQuantizer& {
    return tensor_search(tp, plan.search) == plan.search ? *rq : *rq_ref;
  };
  uint64_t total = 0;
  for (const auto& tp : plan.tensors) {  // refuse before writing anything
    if (!tp.quantize) continue;
    quantizer_of(tp).require(tp.dst_type);
    if (tp.src_type != GgmlType::F32 && !quant::find_codec(tp.src_type))
      throw_error("tensor {}: cannot read type {} (no codec)", tp.name,
                  ggml_type_display_name(tp.src_type));
    total += uint64_t(tp.n_elements());
  }

  ThreadPool pool(n_threads);
  std::vector<std::vector<float>> buffers(size_t(pool.size()));
  std::atomic<uint64_t> done{0};
  std::vector<uint8_t> out;
  gguf::Writer writer = make_writer(plan);
  writer.write(out_path, [&](size_t i) -> std::span<const uint8_t> {
    const TensorPlan& tp = plan.tensors[i];
    if (cb.cancelled && cb.cancelled()) throw_error("{}: interrupted before tensor {}; nothing written", out_path, tp.name);
    if (cb.tensor_begin) cb.tensor_begin(i);
    std::span<const uint8_t> bytes = model.tensor_data(model.tensor(tp.name));
    const std::span<const uint8_t> given = tp.quantize && cb.provided ? cb.provided(tp)
                                                                      : std::span<const uint8_t>{};
    if (!given.empty()) {
      if (given.size() != tp.dst_bytes)
        throw_error("tensor {}: {} bytes provided, {} planned", tp.name, given.size(), tp.dst_bytes);
      bytes = given;
      done += uint64_t(tp.n_elements());
    } else if (tp.quantize) {
      out.resize(tp.dst_bytes);
      auto on_rows = [&](uint64_t n, int thread) {
        const uint64_t now = done += n;
        if (thread == 0 && cb.progress) cb.progress(now, total);
      };
      convert_tensor(model, tp, quantizer_of(tp), pool, buffers, out.data(), on_rows);
      bytes = out;
    }
    if (cb.tensor_done) cb.tensor_done(i);
    return bytes;
  });
  if (cb.progress) cb.progress(total, total);
}

}  // namespace imq::quantize
