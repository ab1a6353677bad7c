// The TYPE argument: llama-quantize's list of file types (spec g.2) and ggml tensor type names.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <regex>
#include <sstream>

#include "imq/error.h"
#include "imq/ggml_types.h"
#include "imq/quantize.h"

namespace imq::quantize {

namespace {

using G = GgmlType;

// llama-quantize's listing order; a numeric TYPE takes the first row with that id, so 15 is
// listed as "Q4_K" like upstream does (only the default output file name shows it).
constexpr FTypeInfo kFTypes[] = {
    {"Q4_0", FType::Q4_0, G::Q4_0, "4.5 bpw, legacy"},
    {"Q4_1", FType::Q4_1, G::Q4_1, "5.0 bpw, legacy"},
    {"Q5_0", FType::Q5_0, G::Q5_0, "5.5 bpw, legacy"},
    {"Q5_1", FType::Q5_1, G::Q5_1, "6.0 bpw, legacy"},
    {"IQ2_XXS", FType::IQ2_XXS, G::IQ2_XXS, "2.06 bpw, needs an imatrix"},
    {"IQ2_XS", FType::IQ2_XS, G::IQ2_XS, "2.31 bpw, needs an imatrix"},
    {"IQ2_S", FType::IQ2_S, G::IQ2_XS, "2.5 bpw, needs an imatrix"},
    {"IQ2_M", FType::IQ2_M, G::IQ2_S, "2.7 bpw, needs an imatrix"},
    {"IQ1_S", FType::IQ1_S, G::IQ1_S, "1.56 bpw, needs an imatrix"},
    {"IQ1_M", FType::IQ1_M, G::IQ1_M, "1.75 bpw, needs an imatrix"},
    {"Q2_K", FType::Q2_K, G::Q2_K, "about 2.6-3.3 bpw"},
    {"Q2_K_S", FType::Q2_K_S, G::Q2_K, "about 2.6 bpw, needs an imatrix"},
    {"IQ3_XXS", FType::IQ3_XXS, G::IQ3_XXS, "3.06 bpw, needs an imatrix"},
    {"IQ3_S", FType::IQ3_S, G::IQ3_S, "3.44 bpw"},
    {"IQ3_M", FType::IQ3_M, G::IQ3_S, "3.66 bpw, IQ3_S with more bits where it matters"},
    {"Q3_K", FType::Q3_K_M, G::Q3_K, "alias for Q3_K_M"},
    {"IQ3_XS", FType::IQ3_XS, G::IQ3_S, "3.3 bpw, IQ3_S with IQ3_XXS in places"},
    {"Q3_K_S", FType::Q3_K_S, G::Q3_K, "about 3.4 bpw"},
    {"Q3_K_M", FType::Q3_K_M, G::Q3_K, "about 3.9 bpw"},
    {"Q3_K_L", FType::Q3_K_L, G::Q3_K, "about 4.3 bpw"},
    {"Q3_HIFI", FType::Q3_HIFI, G::Q3_HIFI, "4.19 bpw, Q3_K + 8 f16 outliers per 256 (imq only)"},
    {"Q3_HIFI_M", FType::Q3_HIFI_M, G::Q3_K, "Q3_K_M's bytes moved to the first/last layers' FFN, Q3_HIFI attention on MoE (imq only)"},
    {"IQ4_NL", FType::IQ4_NL, G::IQ4_NL, "4.5 bpw, non-linear"},
    {"IQ4_XS", FType::IQ4_XS, G::IQ4_XS, "4.25 bpw, non-linear"},
    {"Q4_K", FType::Q4_K_M, G::Q4_K, "alias for Q4_K_M"},
    {"Q4_K_S", FType::Q4_K_S, G::Q4_K, "about 4.6 bpw"},
    {"Q4_K_M", FType::Q4_K_M, G::Q4_K, "about 4.9 bpw, recommended"},
    {"Q5_K", FType::Q5_K_M, G::Q5_K, "alias for Q5_K_M"},
    {"Q5_K_S", FType::Q5_K_S, G::Q5_K, "about 5.5 bpw"},
    {"Q5_K_M", FType::Q5_K_M, G::Q5_K, "about 5.7 bpw"},
    {"Q6_K", FType::Q6_K, G::Q6_K, "6.56 bpw"},
    {"Q8_0", FType::Q8_0, G::Q8_0, "8.5 bpw"},
    {"F16", FType::MOSTLY_F16, G::F16, "16 bpw"},
    {"BF16", FType::MOSTLY_BF16, G::BF16, "16 bpw"},
    {"F32", FType::ALL_F32, G::F32, "32 bpw"},
};

// Tensor types imq can write (a codec exists for each once the codec families have landed).
constexpr G kWritableTypes[] = {G::F32,  G::F16,  G::BF16, G::Q4_0, G::Q4_1,   G::Q5_0,
                                G::Q5_1, G::Q8_0, G::Q2_K, G::Q3_K, G::Q4_K,   G::Q5_K,
                                G::Q6_K, G::IQ4_NL, G::IQ4_XS, G::Q3_HIFI};

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) ==
                  std::toupper(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::span<const FTypeInfo> ftypes() { return kFTypes; }

const FTypeInfo& parse_ftype(std::string_view s) {
  for (const auto& f : kFTypes)
    if (iequals(f.name, s)) return f;
  uint32_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec == std::errc() && end == s.data() + s.size() && !s.empty())
    for (const auto& f : kFTypes)
      if (uint32_t(f.ftype) == n) return f;
  std::string valid;
  for (const auto& f : kFTypes) {
    if (f.description.starts_with("alias")) continue;
    valid += fmt::format("{}{} ({})", valid.empty() ? "" : ", ", f.name, uint32_t(f.ftype));
  }
  throw_error("unknown quantization type '{}'; valid types: {} (aliases Q3_K, Q4_K, Q5_K)", s,
              valid);
}

GgmlType parse_tensor_type(std::string_view s) {
  for (G t : kWritableTypes)
    if (iequals(ggml_type_info(t)->name, s)) return t;
  std::string valid;
  for (G t : kWritableTypes)
    valid += fmt::format("{}{}", valid.empty() ? "" : ", ", ggml_type_info(t)->name);
  throw_error("unknown tensor type '{}'; valid types: {}", s, valid);
}

TensorTypeOverride parse_tensor_type_override(std::string_view s) {
  const size_t eq = s.find('=');
  if (eq == std::string_view::npos)
    throw_error("--tensor-type '{}': expected PATTERN=TYPE (e.g. attn_v=q6_K)", s);
  if (eq == 0) throw_error("--tensor-type '{}': missing tensor name pattern before '='", s);
  if (eq + 1 == s.size()) throw_error("--tensor-type '{}': missing type after '='", s);
  TensorTypeOverride o;
  o.pattern = std::string(s.substr(0, eq));
  std::transform(o.pattern.begin(), o.pattern.end(), o.pattern.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  try {
    std::regex check(o.pattern);
  } catch (const std::regex_error& e) {
    throw_error("--tensor-type '{}': '{}' is not a valid regular expression ({})", s, o.pattern,
                e.what());
  }
  try {
    o.type = parse_tensor_type(s.substr(eq + 1));
  } catch (const Error& e) {
    throw_error("--tensor-type '{}': {}", s, e.what());
  }
  return o;
}

std::vector<TensorTypeOverride> read_tensor_type_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw_error("{}: cannot open the tensor type file", path);
  std::vector<TensorTypeOverride> out;
  std::string line;
  for (int lineno = 1; std::getline(f, line); ++lineno) {
    if (const size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    for (std::string w; words >> w;) {
      try {
        out.push_back(parse_tensor_type_override(w));
      } catch (const Error& e) {
        throw_error("{}:{}: {}", path, lineno, e.what());
      }
    }
  }
  if (f.bad()) throw_error("{}: read error", path);
  if (out.empty()) throw_error("{}: no PATTERN=TYPE entries", path);
  return out;
}

Search parse_search(std::string_view s) {
  if (iequals(s, "reference")) return Search::kReference;
  if (iequals(s, "imq")) return Search::kImq;
  throw_error("unknown search '{}'; valid: reference, imq", s);
}

Q3HifiOutliers parse_q3_hifi_outliers(std::string_view s) {
  if (iequals(s, "saving")) return Q3HifiOutliers::kSaving;
  if (iequals(s, "magnitude")) return Q3HifiOutliers::kMagnitude;
  if (iequals(s, "joint")) return Q3HifiOutliers::kJoint;
  throw_error("unknown Q3_HIFI outlier rule '{}' (saving, magnitude or joint)", s);
}

}  // namespace imq::quantize
