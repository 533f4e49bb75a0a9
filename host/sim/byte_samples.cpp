#include "sim/byte_samples.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace qrplate::sim {

void row_bytes_to_samples_reference(std::uint8_t* src, std::uint16_t* dst, std::size_t width, bool predictor,
                                    bool write_back, std::uint8_t sum)
{
  for (std::size_t x = 0; x < width; ++x) {
    sum = predictor ? static_cast<std::uint8_t>(sum + src[x]) : src[x];
    if (write_back) src[x] = sum;
    dst[x] = sum;
  }
}

void row_bytes_to_samples(std::uint8_t* src, std::uint16_t* dst, std::size_t width, bool predictor, bool write_back)
{
#if defined(__SSE2__)
  const __m128i zero = _mm_setzero_si128();
  __m128i carry = zero;  // every byte: the running sum before this block
  std::size_t x = 0;
  for (; x + 16 <= width; x += 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + x));
    if (predictor) {
      // Byte i becomes the sum of bytes 0..i of the block, modulo 256, then the carry is added.
      v = _mm_add_epi8(v, _mm_slli_si128(v, 1));
      v = _mm_add_epi8(v, _mm_slli_si128(v, 2));
      v = _mm_add_epi8(v, _mm_slli_si128(v, 4));
      v = _mm_add_epi8(v, _mm_slli_si128(v, 8));
      v = _mm_add_epi8(v, carry);
      // Byte 15 into every byte: (15, 15) as word 7 of the high half, that word everywhere.
      const __m128i high = _mm_unpackhi_epi8(v, v);
      carry = _mm_shufflehi_epi16(high, 0xff);
      carry = _mm_unpackhi_epi64(carry, carry);
      if (write_back) _mm_storeu_si128(reinterpret_cast<__m128i*>(src + x), v);
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + x), _mm_unpacklo_epi8(v, zero));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + x + 8), _mm_unpackhi_epi8(v, zero));
  }
  // The last bytes, by the reference, from the running sum.
  row_bytes_to_samples_reference(src + x, dst + x, width - x, predictor, write_back,
                                 static_cast<std::uint8_t>(_mm_cvtsi128_si32(carry)));
#else
  row_bytes_to_samples_reference(src, dst, width, predictor, write_back);
#endif
}

void undo_row_predictor_reference(std::uint16_t* row, std::size_t width, std::uint16_t sum)
{
  for (std::size_t x = 0; x < width; ++x) row[x] = sum = static_cast<std::uint16_t>(sum + row[x]);
}

void undo_row_predictor(std::uint16_t* row, std::size_t width)
{
#if defined(__SSE2__)
  __m128i carry = _mm_setzero_si128();  // every word: the running sum before this block
  std::size_t x = 0;
  for (; x + 8 <= width; x += 8) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + x));
    v = _mm_add_epi16(v, _mm_slli_si128(v, 2));
    v = _mm_add_epi16(v, _mm_slli_si128(v, 4));
    v = _mm_add_epi16(v, _mm_slli_si128(v, 8));
    v = _mm_add_epi16(v, carry);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(row + x), v);
    carry = _mm_shufflehi_epi16(v, 0xff);  // word 7 everywhere
    carry = _mm_unpackhi_epi64(carry, carry);
  }
  undo_row_predictor_reference(row + x, width - x, static_cast<std::uint16_t>(_mm_cvtsi128_si32(carry)));
#else
  undo_row_predictor_reference(row, width);
#endif
}

}  // namespace qrplate::sim
