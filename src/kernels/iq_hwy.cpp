// Highway kernels of the i-quants (kernels/iq_kernels.h): rows to float and the fused row dot,
// compiled once per SIMD target and chosen at run time like kernels/vec_hwy.cpp.
//
// Every type decodes a super-block as groups of 8 values; a group is 8 grid coordinates
// (iq_grids.h: signed bytes, widened to float lanes) times one float scale, then either sign
// flips (IQ2, IQ3: y = s * level, negated where the sign bit is set) or a shift (IQ1:
// y = s * (level + delta)); IQ4_NL and IQ4_XS decode 32 nibbles at a time through their
// codebook (y = s * value). The float operations are the codecs' own, in the same order
// (quant/iq*/: s * q, then the sign; q + delta, then s *), so to_float gives their bits on
// every target. The dot multiplies the same decoded lanes into float accumulators: its sums
// run in another order than dequantize + dot_f32, within float rounding of them.
//
// Block layouts (byte offsets) are those of the codecs' block structs, written out here.
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_AVX3_DL | HWY_SSSE3)
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/iq_hwy.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstdint>
#include <cstring>
#include <utility>

#include "core/fp16.h"
#include "kernels/iq_grids.h"
#include "kernels/iq_kernels.h"
#include "quant/iq4/iq4_search.h"  // kCodebook
#include "quant/lattice/lattice.h"  // sign_byte

HWY_BEFORE_NAMESPACE();
namespace imq::kernels::iq {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// At most one group (8 lanes) per vector: 8 on AVX2/AVX3, 4 on SSE4 and EMU128, 1 on SCALAR.
using DG = hn::CappedTag<float, 8>;
constexpr size_t kLanes = hn::MaxLanes(DG());

HWY_INLINE uint16_t U16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
HWY_INLINE uint32_t U32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Coordinates kLanes*k .. kLanes*(k+1)-1 of a group given as two quads (q0: 0..3, q1: 4..7),
// as float lanes: both quads at once on 8-lane targets, else a part of one quad.
template <class D>
HWY_INLINE hn::Vec<D> Levels(D d, const int8_t* q0, const int8_t* q1, int k) {
  const hn::RebindToSigned<D> di;
  if constexpr (hn::MaxLanes(D()) >= 8) {
    const hn::Half<decltype(di)> dh;
    const hn::Rebind<int8_t, decltype(dh)> d8;
    (void)k;
    // Unqualified (found by ADL when instantiated): the SCALAR target has no Combine.
    return hn::ConvertTo(d, Combine(di, hn::PromoteTo(dh, hn::LoadU(d8, q1)),
                                    hn::PromoteTo(dh, hn::LoadU(d8, q0))));
  } else {
    const hn::Rebind<int8_t, D> d8;
    const int at = int(kLanes) * k;
    return hn::ConvertTo(d, hn::PromoteTo(di, hn::LoadU(d8, at < 4 ? q0 + at : q1 + at - 4)));
  }
}

// Where: y[pos ...] = v (to_float) or acc += v * x[pos ...] (dot).
struct Store {
  float* y;
  HWY_INLINE void operator()(int64_t pos, hn::Vec<DG> v) const { hn::StoreU(v, DG(), y + pos); }
};
struct Dot {
  const float* x;
  hn::Vec<DG> acc0, acc1;  // two chains, so that the adds overlap
  HWY_INLINE void operator()(int64_t pos, hn::Vec<DG> v) {
    acc0 = hn::MulAdd(v, hn::LoadU(DG(), x + pos), acc0);
    std::swap(acc0, acc1);
  }
};

// A group of 8 values at pos: s * level, negated where bit j of signs is set.
template <class Sink>
HWY_INLINE void SignedGroup(int64_t pos, const int8_t* q0, const int8_t* q1, float s,
                            uint32_t signs, Sink& sink) {
  const DG d;
  const hn::RebindToUnsigned<DG> du;
  const auto vs = hn::Set(d, s);
  for (int k = 0; k < int(8 / kLanes); ++k) {
    const auto bits = hn::Set(du, signs >> (kLanes * size_t(k)));
    const auto flip = hn::ShiftLeft<31>(bits >> hn::Iota(du, 0));
    const auto v = hn::Mul(vs, Levels(d, q0, q1, k));
    sink(pos + int64_t(kLanes) * k, hn::Xor(v, hn::BitCast(d, flip)));
  }
}

// A group of 8 values at pos: s * (level + delta).
template <class Sink>
HWY_INLINE void ShiftedGroup(int64_t pos, const int8_t* q, float s, float delta, Sink& sink) {
  const DG d;
  const auto vs = hn::Set(d, s), vdelta = hn::Set(d, delta);
  for (int k = 0; k < int(8 / kLanes); ++k)
    sink(pos + int64_t(kLanes) * k, hn::Mul(vs, hn::Add(Levels(d, q, q + 4, k), vdelta)));
}

// 4-bit scale at nibble ib of a scales array (low nibble first).
HWY_INLINE int Nibble(const uint8_t* scales, int ib) { return (scales[ib / 2] >> (4 * (ib % 2))) & 15; }

// --- the types: kBytes per block of kElems values, Block(b, sink) walks one block ----------

struct Iq2Xxs {  // d f16 | per sub-block: u32 4 grid indices, u32 4x7 signs + 4-bit scale
  static constexpr int64_t kBytes = 66, kElems = 256;
  template <class Sink>
  static HWY_INLINE void Block(const uint8_t* b, Sink& sink) {
    const float d = f16_to_f32(U16(b));
    const uint8_t* qs = b + 2;
    for (int ib = 0; ib < 8; ++ib) {
      const uint32_t aux = U32(qs + 8 * ib + 4);
      const float db = d * (0.5f + float(aux >> 28)) * 0.25f;
      for (int l = 0; l < 4; ++l) {
        const int8_t* q = kIq2Xxs.data() + 8 * qs[8 * ib + l];
        SignedGroup(32 * ib + 8 * l, q, q + 4, db, quant::sign_byte(aux >> (7 * l)), sink);
      }
    }
  }
};

struct Iq2Xs {  // d f16 | 32 x u16 (9-bit index, 7 signs) | 8 x two 4-bit scales
  static constexpr int64_t kBytes = 74, kElems = 256;
  template <class Sink>
  static HWY_INLINE void Block(const uint8_t* b, Sink& sink) {
    const float d = f16_to_f32(U16(b));
    for (int g = 0; g < 32; ++g) {
      const float db = d * (0.5f + float(Nibble(b + 66, g / 2))) * 0.25f;
      const uint16_t qs = U16(b + 2 + 2 * g);
      const int8_t* q = kIq2Xs.data() + 8 * (qs & 511);
      SignedGroup(8 * g, q, q + 4, db, quant::sign_byte(qs >> 9), sink);
    }
  }
};

struct Iq2S {  // d f16 | 32 index bytes | 32 sign bytes | 8 bytes of index bits 8..9 | scales
  static constexpr int64_t kBytes = 82, kElems = 256;
  template <class Sink>
  static HWY_INLINE void Block(const uint8_t* b, Sink& sink) {
    const float d = f16_to_f32(U16(b));
    const uint8_t *qs = b + 2, *signs = b + 34, *qh = b + 66, *scales = b + 74;
    for (int g = 0; g < 32; ++g) {
      const float db = d * (0.5f + float(Nibble(scales, g / 2))) * 0.25f;
      const int8_t* q = kIq2S.data() + 8 * (qs[g] | ((qh[g / 4] >> (2 * (g % 4))) & 3) << 8);
      SignedGroup(8 * g, q, q + 4, db, signs[g], sink);
    }
  }
};

struct Iq3Xxs {  // d f16 | 64 grid indices | per sub-block u32: 4x7 signs + 4-bit scale
  static constexpr int64_t kBytes = 98, kElems = 256;
  template <class Sink>
  static HWY_INLINE void Block(const uint8_t* b, Sink& sink) {
    const float d = f16_to_f32(U16(b));
    const uint8_t* qs = b + 2;
    for (int ib = 0; ib < 8; ++ib) {
      const uint32_t aux = U32(b + 66 + 4 * ib);
      const float db = d * (0.5f + float(aux >> 28)) * 0.5f;
      for (int l = 0; l < 4; ++l) {
        const int8_t* q0 = kIq3Xxs.data() + 4 * qs[8 * ib + 2 * l];
        const int8_t* q1 = kIq3Xxs.data() + 4 * qs[8 * ib + 2 * l + 1];
        SignedGroup(32 * ib + 8 * l, q0, q1, db, quant::sign_byte(aux >> (7 * l)), sink);
      }
    }
  }
};

struct Iq3S {  // d f16 | 64 index bytes | 8 bytes of index bit 8 | 32 sign bytes | scales
  static constexpr int64_t kBytes = 110, kElems = 256;
  template <class Sink>
  static HWY_INLINE void Block(const uint8_t* b, Sink& sink) {
    const float d = f16_to_f32(U16(b));
    const uint8_t *qs = b + 2, *qh = b + 66, *signs = b + 74, *scales = b + 106;
    for (int ib = 0; ib < 8; ++ib) {
      const float db = d * float(1 + 2 * Nibble(scales, ib));
      for (int l = 0; l < 4; ++l) {
        const int k = 2 * l;
        const int8_t* q0 = kIq3S.data() + 4 * (qs[8 * ib + k] | ((qh[ib] >> k) & 1) << 8);
        const int8_t* q1 = kIq3S.data() + 4 * (qs[8 * ib + k + 1] | ((qh[ib] >> (k + 1)) & 1) << 8);
        SignedGroup(32 * ib + 8 * l, q0, q1, db, signs[4 * ib + l], sink);
      }
    }
  }
};

struct Iq1S {  // d f16 | 32 index bytes | per sub-block u16: 4x3 index bits, scale, shift sign
  static constexpr int64_t kBytes = 50, kElems = 256;
  template <class Sink>
  static HWY_INLINE void Block(const uint8_t* b, Sink& sink) {
    const float d = f16_to_f32(U16(b));
    for (int ib = 0; ib < 8; ++ib) {
      const uint16_t qh = U16(b + 34 + 2 * ib);
      const float dl = d * float(2 * ((qh >> 12) & 7) + 1);
      const float delta = qh & 0x8000 ? -quant::iq1::kDelta : quant::iq1::kDelta;
      for (int l = 0; l < 4; ++l) {
        const int8_t* q = kIq1.data() + 8 * (b[2 + 4 * ib + l] | ((qh >> (3 * l)) & 7) << 8);
        ShiftedGroup(32 * ib + 8 * l, q, dl, delta, sink);
      }
    }
  }
};

struct Iq1M {  // 32 index bytes | 16 bytes: per group 3 index bits + shift sign | 4 x u16 scales
  static constexpr int64_t kBytes = 56, kElems = 256;
  template <class Sink>
  static HWY_INLINE void Block(const uint8_t* b, Sink& sink) {
    const uint8_t *qs = b, *qh = b + 32;
    uint16_t sc[4];
    for (int k = 0; k < 4; ++k) sc[k] = U16(b + 48 + 2 * k);
    const float d = f16_to_f32(uint16_t((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) |
                                        ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000)));
    for (int ib = 0; ib < 16; ++ib) {
      const float dl = d * float(2 * ((sc[ib / 4] >> (3 * (ib % 4))) & 7) + 1);
      for (int k = 0; k < 2; ++k) {
        const uint8_t h = uint8_t(qh[ib] >> (4 * k));
        const int8_t* q = kIq1.data() + 8 * (qs[2 * ib + k] | (h & 7) << 8);
        ShiftedGroup(16 * ib + 8 * k, q, dl, h & 0x08 ? -quant::iq1::kDelta : quant::iq1::kDelta, sink);
      }
    }
  }
};

// --- IQ4_NL, IQ4_XS: 32 values per scale, nibbles through the non-linear codebook --------

// A 32-value block at pos: y[j] = s * codebook[qs[j] & 15], y[16 + j] = s * codebook[qs[j] >> 4].
// The codes go through a byte shuffle into a small buffer, read back as groups (a load inside
// one earlier store forwards).
template <class Sink>
HWY_INLINE void NibbleBlock(int64_t pos, const uint8_t* qs, float s, Sink& sink) {
  alignas(16) int8_t codes[32];
#if HWY_TARGET == HWY_SCALAR
  for (int j = 0; j < 16; ++j)
    codes[j] = quant::iq4::kCodebook[qs[j] & 15], codes[16 + j] = quant::iq4::kCodebook[qs[j] >> 4];
#else
  const hn::Full128<int8_t> d8;
  const hn::Full128<uint8_t> du8;
  const auto table = hn::LoadU(d8, quant::iq4::kCodebook);
  const auto q = hn::LoadU(du8, qs);
  hn::Store(hn::TableLookupBytes(table, hn::BitCast(d8, hn::And(q, hn::Set(du8, 15)))), d8, codes);
  hn::Store(hn::TableLookupBytes(table, hn::BitCast(d8, hn::ShiftRight<4>(q))), d8, codes + 16);
#endif
  const DG d;
  const hn::RebindToSigned<DG> di;
  const hn::Rebind<int8_t, DG> dc;
  const auto vs = hn::Set(d, s);
  for (int j = 0; j < 32; j += int(kLanes))
    sink(pos + j, hn::Mul(vs, hn::ConvertTo(d, hn::PromoteTo(di, hn::LoadU(dc, codes + j)))));
}

struct Iq4Nl {  // d f16 | 16 bytes of nibbles
  static constexpr int64_t kBytes = 18, kElems = 32;
  template <class Sink>
  static HWY_INLINE void Block(const uint8_t* b, Sink& sink) {
    NibbleBlock(0, b + 2, f16_to_f32(U16(b)), sink);
  }
};

struct Iq4Xs {  // d f16 | u16 high scale bits | 4 bytes of low scale nibbles | 8 x 16 bytes
  static constexpr int64_t kBytes = 136, kElems = 256;
  template <class Sink>
  static HWY_INLINE void Block(const uint8_t* b, Sink& sink) {
    const float d = f16_to_f32(U16(b));
    const uint16_t scales_h = U16(b + 2);
    for (int ib = 0; ib < 8; ++ib) {
      const int ls = Nibble(b + 4, ib) | (((scales_h >> (2 * ib)) & 3) << 4);
      NibbleBlock(32 * ib, b + 8 + 16 * ib, d * float(ls - 32), sink);
    }
  }
};

// --- rows: n values (a multiple of kElems) ----------------------------------------------

template <class T>
HWY_INLINE void ToFloat(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / T::kElems; ++i) {
    const Store sink{dst + i * T::kElems};
    T::Block(src + i * T::kBytes, sink);
  }
}

template <class T>
HWY_INLINE float DotRow(const uint8_t* row, const float* x, int64_t n) {
  const DG d;
  Dot sink{x, hn::Zero(d), hn::Zero(d)};
  for (int64_t i = 0; i < n / T::kElems; ++i) {
    sink.x = x + i * T::kElems;
    T::Block(row + i * T::kBytes, sink);
  }
  return hn::GetLane(hn::SumOfLanes(d, hn::Add(sink.acc0, sink.acc1)));
}

#define IMQ_IQ_KERNELS(T)                                                                       \
  void T##ToFloat(const uint8_t* src, float* dst, int64_t n) { ToFloat<T>(src, dst, n); }       \
  float T##Dot(const uint8_t* row, const float* x, int64_t n) { return DotRow<T>(row, x, n); }
IMQ_IQ_KERNELS(Iq1S)
IMQ_IQ_KERNELS(Iq1M)
IMQ_IQ_KERNELS(Iq2Xxs)
IMQ_IQ_KERNELS(Iq2Xs)
IMQ_IQ_KERNELS(Iq2S)
IMQ_IQ_KERNELS(Iq3Xxs)
IMQ_IQ_KERNELS(Iq3S)
IMQ_IQ_KERNELS(Iq4Nl)
IMQ_IQ_KERNELS(Iq4Xs)
#undef IMQ_IQ_KERNELS

}  // namespace HWY_NAMESPACE
}  // namespace imq::kernels::iq
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace imq::kernels::iq {

#define IMQ_IQ_EXPORT(T, name)                                                                  \
  HWY_EXPORT(T##ToFloat);                                                                       \
  HWY_EXPORT(T##Dot);                                                                           \
  void name##_to_float(const uint8_t* src, float* dst, int64_t n) {                             \
    HWY_DYNAMIC_DISPATCH(T##ToFloat)(src, dst, n);                                              \
  }                                                                                             \
  float name##_dot(const uint8_t* row, const float* x, int64_t n) {                             \
    return HWY_DYNAMIC_DISPATCH(T##Dot)(row, x, n);                                             \
  }
IMQ_IQ_EXPORT(Iq1S, iq1_s)
IMQ_IQ_EXPORT(Iq1M, iq1_m)
IMQ_IQ_EXPORT(Iq2Xxs, iq2_xxs)
IMQ_IQ_EXPORT(Iq2Xs, iq2_xs)
IMQ_IQ_EXPORT(Iq2S, iq2_s)
IMQ_IQ_EXPORT(Iq3Xxs, iq3_xxs)
IMQ_IQ_EXPORT(Iq3S, iq3_s)
IMQ_IQ_EXPORT(Iq4Nl, iq4_nl)
IMQ_IQ_EXPORT(Iq4Xs, iq4_xs)
#undef IMQ_IQ_EXPORT

}  // namespace imq::kernels::iq
#endif  // HWY_ONCE
