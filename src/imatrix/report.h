// The imatrix report: one self-contained HTML page (inline CSS, JS and SVG, no network) that
// shows an importance matrix at a glance, optionally compared with a second one.
//
//   header        file names, datasets, chunks x chunk size, entries, coverage warnings
//   heatmap       mean importance (mean of sums/count, log scale) per layer x tensor kind
//   per layer     Σ(Act²), μ, σ, % active, entropy, ZD, CosSim: one line per tensor kind
//   distribution  one tensor's importance over its columns (histogram, sorted curve, top outliers)
//   experts       tokens per expert per layer (MoE only), zero-token experts highlighted
//   comparison    per-tensor cosine similarity and ratio of means between two files
//
// The data travels as one JSON blob in <script id="imq-data" type="application/json">; the page's
// script draws everything from it. Column distributions are downsampled to at most
// `max_points` per tensor (plus the exact top outliers), so a large model's page stays small.
#pragma once
#include <cstddef>
#include <string>

#include "imq/imatrix.h"

namespace imq::imatrix {

struct ReportOptions {
  std::string name_a = "A";  // shown in the header (usually the file path)
  std::string name_b = "B";  // the comparison file, when given
  size_t max_points = 512;   // sorted-curve points kept per tensor
  size_t top_outliers = 12;  // exact top columns listed per tensor
  size_t hist_bins = 48;     // log-scale histogram bins per tensor
};

// The report data as JSON text (what the page embeds). Throws imq::Error when `b` is given
// but does not describe the same model as `a` (no common tensor, or a size mismatch).
std::string report_json(const Imatrix& a, const Imatrix* b, const ReportOptions& opt);

// The whole HTML page.
std::string render_report(const Imatrix& a, const Imatrix* b, const ReportOptions& opt);

// Writes render_report(...) to `path` atomically (temporary file + rename).
void write_report(const std::string& path, const Imatrix& a, const Imatrix* b,
                  const ReportOptions& opt);

}  // namespace imq::imatrix
