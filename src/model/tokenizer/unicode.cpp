#include "model/tokenizer/unicode.h"

#include <array>

namespace imq::tok {

namespace {

// Decodes one well-formed sequence at `p` (n bytes available); returns its length, or 0 when
// the bytes there are not a valid sequence (bad lead, bad continuation, truncated).
// Like llama.cpp, overlong forms and surrogates are not rejected: only the bit pattern counts.
size_t decode_one(const uint8_t* p, size_t n, uint32_t& cpt) {
  const uint8_t c = p[0];
  if (c < 0x80) {
    cpt = c;
    return 1;
  }
  size_t len = 0;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    cpt = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cpt = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cpt = c & 0x07;
  } else {
    return 0;
  }
  if (len > n) return 0;
  for (size_t i = 1; i < len; ++i) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cpt = (cpt << 6) | (p[i] & 0x3F);
  }
  return len;
}

struct Gpt2Map {
  std::array<uint32_t, 256> to_cpt{};
  Gpt2Map() {
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool self = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_cpt[size_t(b)] = self ? uint32_t(b) : next++;
    }
  }
};

const Gpt2Map& gpt2_map() {
  static const Gpt2Map m;  // immutable table, built once
  return m;
}

}  // namespace

std::vector<uint32_t> utf8_decode(std::string_view text) {
  std::vector<uint32_t> out;
  out.reserve(text.size());
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  size_t i = 0;
  while (i < text.size()) {
    uint32_t cpt = 0;
    const size_t len = decode_one(p + i, text.size() - i, cpt);
    if (len == 0) {
      out.push_back(0xFFFD);
      ++i;
    } else {
      out.push_back(cpt);
      i += len;
    }
  }
  return out;
}

void utf8_append(std::string& out, uint32_t cpt) {
  if (cpt < 0x80) {
    out += char(cpt);
  } else if (cpt < 0x800) {
    out += char(0xC0 | (cpt >> 6));
    out += char(0x80 | (cpt & 0x3F));
  } else if (cpt < 0x10000) {
    out += char(0xE0 | (cpt >> 12));
    out += char(0x80 | ((cpt >> 6) & 0x3F));
    out += char(0x80 | (cpt & 0x3F));
  } else {
    out += char(0xF0 | ((cpt >> 18) & 0x07));
    out += char(0x80 | ((cpt >> 12) & 0x3F));
    out += char(0x80 | ((cpt >> 6) & 0x3F));
    out += char(0x80 | (cpt & 0x3F));
  }
}

bool is_whitespace(uint32_t c) {
  if (c < 0x80) return c == 0x20 || (c >= 0x09 && c <= 0x0D);
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

uint32_t byte_to_gpt2_cpt(uint8_t byte) { return gpt2_map().to_cpt[byte]; }

int gpt2_cpt_to_byte(uint32_t cpt) {
  if (cpt < 256) {
    const bool self = (cpt >= 0x21 && cpt <= 0x7E) || (cpt >= 0xA1 && cpt <= 0xAC) || (cpt >= 0xAE);
    return self ? int(cpt) : -1;
  }
  const auto& m = gpt2_map().to_cpt;
  if (cpt >= 256 + 68) return -1;
  for (int b = 0; b < 256; ++b)
    if (m[size_t(b)] == cpt) return b;
  return -1;
}

std::string gpt2_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) utf8_append(out, byte_to_gpt2_cpt(uint8_t(c)));
  return out;
}

}  // namespace imq::tok
