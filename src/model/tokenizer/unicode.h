// UTF-8 and the GPT-2 byte <-> character map, as llama.cpp's tokenizers use them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace imq::tok {

// Length of the UTF-8 sequence a lead byte announces (continuation bytes count as 1);
// callers clamp it to the bytes left.
inline size_t utf8_len(uint8_t lead) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[lead >> 4];
}

// Code points of `text`; every byte that does not start a valid sequence becomes U+FFFD
// and decoding goes on with the next byte.
std::vector<uint32_t> utf8_decode(std::string_view text);
void utf8_append(std::string& out, uint32_t cpt);

// Unicode White_Space (the set llama.cpp's pre-tokenizers treat as \s).
bool is_whitespace(uint32_t cpt);

// GPT-2's byte-level alphabet: bytes 0x21-0x7E, 0xA1-0xAC, 0xAE-0xFF stand for themselves,
// the other 68 bytes map, in order, to U+0100, U+0101, ...
uint32_t byte_to_gpt2_cpt(uint8_t byte);
// Inverse map; -1 for a code point outside the alphabet.
int gpt2_cpt_to_byte(uint32_t cpt);
// UTF-8 of the byte-level characters of every byte of `bytes`.
std::string gpt2_encode(std::string_view bytes);

}  // namespace imq::tok
