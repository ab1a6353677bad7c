// The ggml tensor type ids that may appear in a GGUF file (spec g.1), with block size and
// bytes per block. Ids that ggml removed have block_size 0 and are rejected by the reader.
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

namespace imq {

enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
  IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39, NVFP4 = 40, Q1_0 = 41, Q2_0 = 42,
  // imq's own types live far outside ggml's range (docs/FORMATS.md).
  Q3_HIFI = 0x494d5100,  // 'IMQ\0' + 0
};

inline constexpr uint32_t kGgmlTypeCount = 43;

// A file with Q3_HIFI tensors carries this key (UINT32 kQ3HifiVersion); the reader refuses
// Q3_HIFI tensors without it, in case another tool uses the same id for something else.
inline constexpr std::string_view kQ3HifiVersionKey = "imq.q3_hifi.version";
inline constexpr uint32_t kQ3HifiVersion = 1;

struct GgmlTypeInfo {
  std::string_view name;  // ggml's lower-case name, e.g. "q4_K"
  uint32_t block_size;    // elements per block (0: id not valid)
  uint32_t type_size;     // bytes per block
};

// Info for a type id, or nullopt for an id that is unknown or removed.
std::optional<GgmlTypeInfo> ggml_type_info(GgmlType type);
// Upper-case display name ("Q4_K", "F32"); "type<N>" for unknown ids.
std::string ggml_type_display_name(GgmlType type);

}  // namespace imq
