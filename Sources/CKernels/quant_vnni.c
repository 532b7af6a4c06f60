// Quantised rows times 8-bit activations with AVX-512 VNNI (`vpdpbusd`, here on 256-bit
// registers): the VNNI copies of TensorKit's `eightRowsPacked`, `eightRowsPackedQ8` and `eightRowsPackedQ6K`
// (QuantizedBatch.swift), for rows repacked 8 at a time (`PackedRows`, QuantizedPacked.swift, has the layouts):
// Q4_0, Q4_1, Q5_0 and Q4_K (scales, then 4 words of 32 bytes, word k holding bytes 4k…4k+3 of each row's
// nibbles), Q8_0 and Q6_K (scales, then 8 words of whole bytes).
//
// AVX2 needs three instructions per word and input (`vpmaddubsw` into 16 bits, then adds, and one
// `vpmaddwd` per block); `vpdpbusd` multiplies the 4 unsigned weight bytes of a lane by the 4 signed
// activation bytes and adds them to the lane's 32-bit sum in one.
#include "ckernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TK_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

int tk_has_vnni_kernels(void) { return 1; }

// Block b's 8 rows (weights t0…t7, values 0…15) · one input's block, plus `start` in every lane: 8 int32 sums.
// Four chains of two, so the latency is two `vpdpbusd`s and two adds, not eight in a row.
TK_VNNI static inline __m256i dot8(const __m256i t[8], const int *x, __m256i start) {
    const __m256i z = _mm256_setzero_si256();
    __m256i s0 = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(start, t[0], _mm256_set1_epi32(x[0])), t[4], _mm256_set1_epi32(x[4]));
    __m256i s1 = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(z, t[1], _mm256_set1_epi32(x[1])), t[5], _mm256_set1_epi32(x[5]));
    __m256i s2 = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(z, t[2], _mm256_set1_epi32(x[2])), t[6], _mm256_set1_epi32(x[6]));
    __m256i s3 = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(z, t[3], _mm256_set1_epi32(x[3])), t[7], _mm256_set1_epi32(x[7]));
    return _mm256_add_epi32(_mm256_add_epi32(s0, s1), _mm256_add_epi32(s2, s3));
}

// Block b's scales and weights: dw (8 row scales), mw (the factor of Σx: Q4_1's and Q4_K's minimum, Q4_0's
// −8·d and Q5_0's −16·d, their weights being q − 8 and q − 16) and the values of the 4 words split into t[0…7].
// Q5_0's fifth bits come as 8 masks of 32 bits, one per t[w] (bit 4r + i: row r's weight of byte i),
// rearranged so at load: one masked byte add each.
TK_VNNI static inline void unpack(const char *blk, int format, __m256 *dw, __m256 *mw, __m256i t[8]) {
    const __m256i low = _mm256_set1_epi8(15);
    if (format == TK_Q4_K) {  // Float32 scales d·sc_j and minimums −dmin·m_j (not exact in 16 bits)
        *dw = _mm256_loadu_ps((const float *)blk);
        *mw = _mm256_loadu_ps((const float *)(blk + 32));
    } else {
        *dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk));
        *mw = format == TK_Q4_1 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + 16)))
                                : _mm256_mul_ps(*dw, _mm256_set1_ps(format == TK_Q5_0 ? -16 : -8));
    }
    const char *w = blk + (format == TK_Q4_0 ? 16 : format == TK_Q4_1 ? 32 : format == TK_Q5_0 ? 48 : 64);
    for (int k = 0; k < 4; k++) {
        const __m256i p = _mm256_loadu_si256((const __m256i *)(w + 32 * k));
        t[k] = _mm256_and_si256(p, low);
        t[k + 4] = _mm256_and_si256(_mm256_srli_epi16(p, 4), low);
    }
    if (format == TK_Q5_0) {
        const uint32_t *masks = (const uint32_t *)(blk + 16);
        const __m256i sixteen = _mm256_set1_epi8(16);
        for (int k = 0; k < 8; k++) t[k] = _mm256_mask_add_epi8(t[k], _cvtu32_mask32(masks[k]), t[k], sixteen);
    }
}

// The inputs come side by side per block (TensorKit's `InputsByBlock`): block b of input i is the 32 bytes at
// x + 32·(b·n + i), its scale d[b·n + i], its scaled sum s[b·n + i], the integer sums of its bytes 0…15 and 16…31
// o[2(b·n + i)] and o[2(b·n + i) + 1], so a block's n inputs are one stream; reading
// them through a pointer per input was a quarter slower (scattered rows, and a pointer load before each).
//
// Q4_0's and Q5_0's weights are d·(q − 8) and d·(q − 16): `offset` (8 or 16) times Σx (from `o`, the sums of each
// block's two halves) starts the integer sum, which saves a multiply-add per input and block; Q4_1's and Q4_K's
// minimum is a Float32 per row, so theirs stays `mw · s` (`offset` 0).
TK_VNNI void tk_q4_packed_rows_vnni(const void *rows, long blocks, long blockBytes, int format, long n, const int8_t *x,
                                    const float *d, const float *s, const int32_t *o, int offset, float *restrict acc) {
    __m256 dw, mw;
    __m256i t[8];
    if (n == 1) {
        // one input (generation): the sums stay in a register
        __m256 c = _mm256_setzero_ps();
        for (long b = 0; b < blocks; b++) {
            unpack((const char *)rows + b * blockBytes, format, &dw, &mw, t);
            const __m256i start = _mm256_set1_epi32(-offset * (o[2 * b] + o[2 * b + 1]));
            const __m256 dot = _mm256_cvtepi32_ps(dot8(t, (const int *)(x + 32 * b), start));
            c = _mm256_fmadd_ps(dot, _mm256_mul_ps(dw, _mm256_set1_ps(d[b])), c);
            if (!offset) c = _mm256_fmadd_ps(mw, _mm256_set1_ps(s[b]), c);
        }
        _mm256_storeu_ps(acc, c);
        return;
    }
    for (long i = 0; i < 8 * n; i++) acc[i] = 0;
    for (long b = 0; b < blocks; b++) {
        unpack((const char *)rows + b * blockBytes, format, &dw, &mw, t);
        const int8_t *xb = x + 32 * n * b;
        const float *db = d + n * b, *sb = s + n * b;
        if (offset) {
            const int32_t *ob = o + 2 * n * b;
            for (long i = 0; i < n; i++) {
                const __m256i start = _mm256_set1_epi32(-offset * (ob[2 * i] + ob[2 * i + 1]));
                const __m256 dot = _mm256_cvtepi32_ps(dot8(t, (const int *)(xb + 32 * i), start));
                float *c = acc + 8 * i;
                _mm256_storeu_ps(c, _mm256_fmadd_ps(dot, _mm256_mul_ps(dw, _mm256_set1_ps(db[i])), _mm256_loadu_ps(c)));
            }
            continue;
        }
        for (long i = 0; i < n; i++) {
            const __m256 dot = _mm256_cvtepi32_ps(dot8(t, (const int *)(xb + 32 * i), _mm256_setzero_si256()));
            float *c = acc + 8 * i;
            const __m256 v = _mm256_fmadd_ps(dot, _mm256_mul_ps(dw, _mm256_set1_ps(db[i])), _mm256_loadu_ps(c));
            _mm256_storeu_ps(c, _mm256_fmadd_ps(mw, _mm256_set1_ps(sb[i]), v));
        }
    }
}

// Q8_0 rows (PackedRows: 8 half scales, then 8 words of 32 bytes, word k holding bytes 4k…4k+3 of each
// row's 32 weights) · n inputs. The weights are signed, so as with AVX2 the unsigned operand is |w| and
// the input bytes take w's signs (`vpsignb`): the same integer sums as the AVX2 kernel's, in one
// `vpdpbusd` per word instead of `vpmaddubsw` + `vpmaddwd`.
TK_VNNI void tk_q8_packed_rows_vnni(const void *rows, long blocks, long blockBytes, long n, const int8_t *x,
                                    const float *d, float *restrict acc) {
    __m256i t[8], u[8];
    __m256 c1 = _mm256_setzero_ps();
    if (n != 1)
        for (long i = 0; i < 8 * n; i++) acc[i] = 0;
    for (long b = 0; b < blocks; b++) {
        const char *blk = (const char *)rows + b * blockBytes;
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk));
        for (int k = 0; k < 8; k++) {
            t[k] = _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * k));
            u[k] = _mm256_sign_epi8(t[k], t[k]);
        }
        for (long i = 0; i < n; i++) {
            const int *xi = (const int *)(x + 32 * (n * b + i));
            __m256i sk[4];
            for (int k = 0; k < 4; k++) {
                sk[k] = _mm256_dpbusd_epi32(_mm256_setzero_si256(), u[k], _mm256_sign_epi8(_mm256_set1_epi32(xi[k]), t[k]));
                sk[k] = _mm256_dpbusd_epi32(sk[k], u[k + 4], _mm256_sign_epi8(_mm256_set1_epi32(xi[k + 4]), t[k + 4]));
            }
            const __m256 dot = _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_add_epi32(sk[0], sk[1]), _mm256_add_epi32(sk[2], sk[3])));
            const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(d[n * b + i]));
            if (n == 1) {
                c1 = _mm256_fmadd_ps(dot, scale, c1);  // one input (generation): the sums stay in a register
            } else {
                float *c = acc + 8 * i;
                _mm256_storeu_ps(c, _mm256_fmadd_ps(dot, scale, _mm256_loadu_ps(c)));
            }
        }
    }
    if (n == 1) _mm256_storeu_ps(acc, c1);
}

// Q6_K rows (PackedRows: per 32 values, 8 Float32 scales of values 0…15, 8 of values 16…31, then 8 words of 32
// bytes as Q8_0's, the 6-bit values 0…63 unsigned) · n inputs. A Q6_K weight is d·sc·(q − 32) with a scale per
// 16 values, so words 0–3 and 4–7 are summed apart, each starting from −32·Σx of its 16 input bytes (`o`), and
// scaled by its own row scales.
TK_VNNI void tk_q6k_packed_rows_vnni(const void *rows, long blocks, long blockBytes, long n, const int8_t *x,
                                     const float *d, const int32_t *o, float *restrict acc) {
    __m256i t[8];
    __m256 c1 = _mm256_setzero_ps();
    if (n != 1)
        for (long i = 0; i < 8 * n; i++) acc[i] = 0;
    const __m256i z = _mm256_setzero_si256();
    for (long b = 0; b < blocks; b++) {
        const char *blk = (const char *)rows + b * blockBytes;
        const __m256 lo = _mm256_loadu_ps((const float *)blk), hi = _mm256_loadu_ps((const float *)(blk + 32));
        for (int k = 0; k < 8; k++) t[k] = _mm256_loadu_si256((const __m256i *)(blk + 64 + 32 * k));
        for (long i = 0; i < n; i++) {
            const int *xi = (const int *)(x + 32 * (n * b + i));
            const int32_t *oi = o + 2 * (n * b + i);
            __m256i a0 = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_set1_epi32(-32 * oi[0]), t[0], _mm256_set1_epi32(xi[0])), t[2], _mm256_set1_epi32(xi[2]));
            __m256i a1 = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(z, t[1], _mm256_set1_epi32(xi[1])), t[3], _mm256_set1_epi32(xi[3]));
            __m256i b0 = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_set1_epi32(-32 * oi[1]), t[4], _mm256_set1_epi32(xi[4])), t[6], _mm256_set1_epi32(xi[6]));
            __m256i b1 = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(z, t[5], _mm256_set1_epi32(xi[5])), t[7], _mm256_set1_epi32(xi[7]));
            const __m256 dot = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(b0, b1)), hi,
                                               _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(a0, a1)), lo));
            if (n == 1) {
                c1 = _mm256_fmadd_ps(dot, _mm256_set1_ps(d[b]), c1);
            } else {
                float *c = acc + 8 * i;
                _mm256_storeu_ps(c, _mm256_fmadd_ps(dot, _mm256_set1_ps(d[n * b + i]), _mm256_loadu_ps(c)));
            }
        }
    }
    if (n == 1) _mm256_storeu_ps(acc, c1);
}

// Sixteen rows at once: two consecutive 8-row groups of the same packed matrix (the second `blocks · blockBytes`
// after the first), the first in lanes 0–7 of a 512-bit register and the second in lanes 8–15. Each block's
// weights are unpacked once for all n inputs, so widening them costs little, and every instruction per input then
// does twice the work: the 8-row loop spent more on the broadcasts, adds and Float32 scaling around its 8
// `vpdpbusd`s than on the products (a chunk of 64 inputs against Qwen2.5's 4,864 × 896 Q5_0: 96 → 134–140 G
// multiply-adds/s, one thread, alternating). Each lane does the same operations in the same order as the 8-row
// kernels', so the results are the same bit for bit. The accumulators (16·n floats) start at the first block
// and the last block writes row r + j · input i to `out[i·outStride + j]` directly. The offsets start the integer
// sums at `start` (−8, −16 or −128 times Σx of each input block, from `InputsByBlock`): a broadcast instead of scalar
// loads, an add and a multiply per input and block (about 4% of the kernel; shifting one −Σx in the loop instead
// cost another 5%).
//
// An input block's scale is a power of two (TensorKit's `activationScale`), so the 8-row kernels' `dw · d` is exact
// and here `vscalefps` by its exponent `e` (log2 d, −∞ for 0) applies it to the integer sum instead: the same float
// result. `vpdpbusd` and the multiply-adds share two 256-bit units, one 512-bit instruction at a time, while
// `vscalefps`, conversions and float adds go elsewhere; a block and input took 8 `vpdpbusd` and 2 multiplies or
// multiply-adds (Q5_0), and now 1 (the same loop: 151 → 164 G multiply-adds/s).
#define TK_INLINE __attribute__((always_inline)) inline

TK_VNNI static TK_INLINE __m512i wide(__m256i a, __m256i b) { return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1); }

TK_VNNI static TK_INLINE __m512 widef(__m256 a, __m256 b) {
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(a)), _mm256_castps_pd(b), 1));
}

// dot8 on 16 rows.
TK_VNNI static TK_INLINE __m512i dot16(const __m512i t[8], const int *x, __m512i start) {
    const __m512i z = _mm512_setzero_si512();
    __m512i s0 = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(start, t[0], _mm512_set1_epi32(x[0])), t[4], _mm512_set1_epi32(x[4]));
    __m512i s1 = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(z, t[1], _mm512_set1_epi32(x[1])), t[5], _mm512_set1_epi32(x[5]));
    __m512i s2 = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(z, t[2], _mm512_set1_epi32(x[2])), t[6], _mm512_set1_epi32(x[6]));
    __m512i s3 = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(z, t[3], _mm512_set1_epi32(x[3])), t[7], _mm512_set1_epi32(x[7]));
    return _mm512_add_epi32(_mm512_add_epi32(s0, s1), _mm512_add_epi32(s2, s3));
}

// Runs BLOCK(b, first, to) over blocks 0…blocks−1 (with `blocks`, `out` in scope): the first block starts the
// sums, the last writes them to `out`; the flags are constants, so each call is its own specialised copy.
#define TK_EACH_BLOCK(BLOCK)                                            \
    do {                                                                \
        if (blocks == 1) {                                              \
            BLOCK(0, 1, out);                                           \
            break;                                                      \
        }                                                               \
        BLOCK(0, 1, NULL);                                              \
        for (long b = 1; b < blocks - 1; b++) BLOCK(b, 0, NULL);        \
        BLOCK(blocks - 1, 0, out);                                      \
    } while (0)

// Input i's running sums: from 0 at the first block; stored to the accumulators, or to `out` after the last.
TK_VNNI static TK_INLINE __m512 running(const float *acc, long i, int first) {
    return first ? _mm512_setzero_ps() : _mm512_loadu_ps(acc + 16 * i);
}
TK_VNNI static TK_INLINE void keep(__m512 v, float *restrict acc, long i, float *restrict out, long outStride) {
    _mm512_storeu_ps(out ? out + i * outStride : acc + 16 * i, v);
}

// One block of 16 Q4_0/Q4_1/Q5_0/Q4_K rows times the n inputs (x, e, s, start already at this block).
TK_VNNI static TK_INLINE void q4_block16(const char *blk, long second, int format, long n, const int8_t *x, const float *e,
                                         const float *s, const int32_t *start, float *restrict acc, int first,
                                         float *restrict out, long outStride) {
    __m256 dwa, mwa, dwb, mwb;
    __m256i ta[8], tb[8];
    __m512i t[8];
    unpack(blk, format, &dwa, &mwa, ta);
    unpack(blk + second, format, &dwb, &mwb, tb);
    for (int k = 0; k < 8; k++) t[k] = wide(ta[k], tb[k]);
    const __m512 dw = widef(dwa, dwb), mw = widef(mwa, mwb);
    for (long i = 0; i < n; i++) {
        const __m512i from = start ? _mm512_set1_epi32(start[i]) : _mm512_setzero_si512();
        const __m512 dot = _mm512_scalef_ps(_mm512_cvtepi32_ps(dot16(t, (const int *)(x + 32 * i), from)), _mm512_set1_ps(e[i]));
        __m512 v = _mm512_fmadd_ps(dot, dw, running(acc, i, first));
        if (!start) v = _mm512_fmadd_ps(mw, _mm512_set1_ps(s[i]), v);
        keep(v, acc, i, out, outStride);
    }
}

TK_VNNI void tk_q4_packed_rows16_vnni(const void *rows, long blocks, long blockBytes, int format, long n, const int8_t *x,
                                      const float *e, const float *s, const int32_t *start, float *restrict acc,
                                      float *restrict out, long outStride) {
    const char *base = (const char *)rows;
    const long second = blocks * blockBytes;
#define TK_Q4_BLOCK(b, first, to) \
    q4_block16(base + (b) * blockBytes, second, format, n, x + 32 * n * (b), e + n * (b), s + n * (b), \
               start ? start + n * (b) : NULL, acc, first, to, outStride)
    TK_EACH_BLOCK(TK_Q4_BLOCK);
#undef TK_Q4_BLOCK
}

// One block of 16 Q8_0 rows. A 512-bit `vpsignb` does not exist, so instead of the 8-row kernel's |w| and signs the
// weights go in as the unsigned bytes w + 128 and the sum starts at −128·Σx (`start`): the same integers.
TK_VNNI static TK_INLINE void q8_block16(const char *blk, long second, long n, const int8_t *x, const float *e,
                                         const int32_t *start, float *restrict acc, int first, float *restrict out, long outStride) {
    const __m512 dw = widef(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk)),
                            _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + second))));
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    __m512i t[8];
    for (int k = 0; k < 8; k++) {
        const __m256i a = _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * k));
        const __m256i b = _mm256_loadu_si256((const __m256i *)(blk + second + 16 + 32 * k));
        t[k] = _mm512_xor_si512(wide(a, b), bias);
    }
    // dot16 pairs word k with k + 4: the 8-row kernel's four sums, added in another order (integers, so exact)
    for (long i = 0; i < n; i++) {
        const __m512 dot = _mm512_scalef_ps(_mm512_cvtepi32_ps(dot16(t, (const int *)(x + 32 * i), _mm512_set1_epi32(start[i]))),
                                            _mm512_set1_ps(e[i]));
        const __m512 v = _mm512_fmadd_ps(dot, dw, running(acc, i, first));
        keep(v, acc, i, out, outStride);
    }
}

TK_VNNI void tk_q8_packed_rows16_vnni(const void *rows, long blocks, long blockBytes, long n, const int8_t *x, const float *e,
                                      const int32_t *start, float *restrict acc, float *restrict out, long outStride) {
    const char *base = (const char *)rows;
    const long second = blocks * blockBytes;
#define TK_Q8_BLOCK(b, first, to) \
    q8_block16(base + (b) * blockBytes, second, n, x + 32 * n * (b), e + n * (b), start + n * (b), acc, first, to, outStride)
    TK_EACH_BLOCK(TK_Q8_BLOCK);
#undef TK_Q8_BLOCK
}

// One block of 16 Q6_K rows (as `tk_q6k_packed_rows_vnni`; the input's scale by `vscalefps` and a float add, exact, in
// place of a multiply-add: 2 of those per block and input, not 3). The halves' sums start at `o32` (−32 times the input
// block's half sums, made once per block rather than multiplied here).
TK_VNNI static TK_INLINE void q6k_block16(const char *blk, long second, long n, const int8_t *x, const float *e,
                                          const int32_t *o32, float *restrict acc, int first, float *restrict out, long outStride) {
    const __m512 lo = widef(_mm256_loadu_ps((const float *)blk), _mm256_loadu_ps((const float *)(blk + second)));
    const __m512 hi = widef(_mm256_loadu_ps((const float *)(blk + 32)), _mm256_loadu_ps((const float *)(blk + second + 32)));
    __m512i t[8];
    for (int k = 0; k < 8; k++)
        t[k] = wide(_mm256_loadu_si256((const __m256i *)(blk + 64 + 32 * k)),
                    _mm256_loadu_si256((const __m256i *)(blk + second + 64 + 32 * k)));
    const __m512i z = _mm512_setzero_si512();
    for (long i = 0; i < n; i++) {
        const int *xi = (const int *)(x + 32 * i);
        const int32_t *oi = o32 + 2 * i;
        __m512i a0 = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_set1_epi32(oi[0]), t[0], _mm512_set1_epi32(xi[0])), t[2], _mm512_set1_epi32(xi[2]));
        __m512i a1 = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(z, t[1], _mm512_set1_epi32(xi[1])), t[3], _mm512_set1_epi32(xi[3]));
        __m512i b0 = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_set1_epi32(oi[1]), t[4], _mm512_set1_epi32(xi[4])), t[6], _mm512_set1_epi32(xi[6]));
        __m512i b1 = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(z, t[5], _mm512_set1_epi32(xi[5])), t[7], _mm512_set1_epi32(xi[7]));
        const __m512 dot = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(b0, b1)), hi,
                                           _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(a0, a1)), lo));
        keep(_mm512_add_ps(_mm512_scalef_ps(dot, _mm512_set1_ps(e[i])), running(acc, i, first)), acc, i, out, outStride);
    }
}

TK_VNNI void tk_q6k_packed_rows16_vnni(const void *rows, long blocks, long blockBytes, long n, const int8_t *x, const float *e,
                                       const int32_t *o32, float *restrict acc, float *restrict out, long outStride) {
    const char *base = (const char *)rows;
    const long second = blocks * blockBytes;
#define TK_Q6K_BLOCK(b, first, to) \
    q6k_block16(base + (b) * blockBytes, second, n, x + 32 * n * (b), e + n * (b), o32 + 2 * n * (b), acc, first, to, outStride)
    TK_EACH_BLOCK(TK_Q6K_BLOCK);
#undef TK_Q6K_BLOCK
}

// TensorKit's `quantizeActivations` and `withInputsByBlock` in one pass, with 512-bit registers: n rows of `cols` floats
// (x, row i at x + i·cols) rounded to 8 bits per block of 32, d the smallest power of two with max|x|/d ≤ 127 and
// q = round(x/d) (nearest, ties to even: MXCSR's default), written row by row (bytes at rowQ + i·cols, scales and scaled
// sums at rowDS + 2i·blocks and + blocks) and side by side (block b of input i at j = b·n + i: bytes q + 32j, d[j],
// s[j], half sums o[2j], o[2j + 1] and those times −32 at o32, z8[j], z16[j], z128[j] = −8, −16 and −128 times Σq,
// e[j] = log2 d or −∞). The same bytes and numbers as TensorKit's AVX2 path and `withInputsByBlock`, which spent 20 ns
// a block here; this takes 9 (the 512-bit conversion narrows to bytes in order, no packs to undo).
TK_VNNI void tk_quantize_by_block(const float *x, long n, long cols, int8_t *rowQ, float *rowDS, int8_t *q, float *d,
                                  float *s, int32_t *o, int32_t *o32, int32_t *z8, int32_t *z16, int32_t *z128, float *e) {
    const long blocks = cols / 32;
    for (long i = 0; i < n; i++) {
        const float *xi = x + i * cols;
        int8_t *qi = rowQ + i * cols;
        float *di = rowDS + 2 * i * blocks, *si = di + blocks;
        for (long b = 0; b < blocks; b++) {
            const __m512 v0 = _mm512_loadu_ps(xi + 32 * b), v1 = _mm512_loadu_ps(xi + 32 * b + 16);
            const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
            const float third = amax / 127;
            uint32_t bits;
            __builtin_memcpy(&bits, &third, 4);
            // the next power of two (a mantissa other than 0 carries into the exponent), and its exact inverse
            bits = third == 0 ? 0 : (bits + 0x7FFFFF) & 0xFF800000u;
            const uint32_t invBits = bits ? (254u << 23) - bits : 0;
            float scale, inv;
            __builtin_memcpy(&scale, &bits, 4);
            __builtin_memcpy(&inv, &invBits, 4);
            const __m512 m = _mm512_set1_ps(inv);
            const __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, m)), i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, m));
            const __m256i bytes = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm512_cvtsepi32_epi8(i0)), _mm512_cvtsepi32_epi8(i1), 1);
            // the half sums from the bytes: `vpsadbw` adds unsigned bytes 8 at a time, so bytes + 128, then 16·128 off
            // (two 512-bit reductions of i0 and i1 took a fifth longer)
            const __m256i g = _mm256_sad_epu8(_mm256_xor_si256(bytes, _mm256_set1_epi8((char)0x80)), _mm256_setzero_si256());
            const __m128i g0 = _mm256_castsi256_si128(g), g1 = _mm256_extracti128_si256(g, 1);
            const int32_t lo = (int32_t)(_mm_cvtsi128_si64(g0) + _mm_extract_epi64(g0, 1)) - 2048;
            const int32_t hi = (int32_t)(_mm_cvtsi128_si64(g1) + _mm_extract_epi64(g1, 1)) - 2048;
            const float sum = scale * (float)(lo + hi);
            const long j = b * n + i;
            _mm256_storeu_si256((__m256i *)(qi + 32 * b), bytes);
            _mm256_storeu_si256((__m256i *)(q + 32 * j), bytes);
            di[b] = scale, si[b] = sum, d[j] = scale, s[j] = sum;
            o[2 * j] = lo, o[2 * j + 1] = hi, o32[2 * j] = -32 * lo, o32[2 * j + 1] = -32 * hi;
            z8[j] = -8 * (lo + hi), z16[j] = -16 * (lo + hi), z128[j] = -128 * (lo + hi);
            e[j] = scale > 0 ? (float)((int)(bits >> 23) - 127) : -__builtin_inff();
        }
    }
}

#else
int tk_has_vnni_kernels(void) { return 0; }
void tk_q4_packed_rows_vnni(const void *rows, long blocks, long blockBytes, int format, long n, const int8_t *x,
                            const float *d, const float *s, const int32_t *o, int offset, float *restrict acc) {
    (void)rows; (void)blocks; (void)blockBytes; (void)format; (void)n; (void)x; (void)d; (void)s; (void)o; (void)offset;
    (void)acc;
    __builtin_trap();  // KernelSet never calls it where tk_has_vnni_kernels() is 0
}
void tk_q8_packed_rows_vnni(const void *rows, long blocks, long blockBytes, long n, const int8_t *x, const float *d,
                            float *restrict acc) {
    (void)rows; (void)blocks; (void)blockBytes; (void)n; (void)x; (void)d; (void)acc;
    __builtin_trap();
}
void tk_q6k_packed_rows_vnni(const void *rows, long blocks, long blockBytes, long n, const int8_t *x, const float *d,
                             const int32_t *o, float *restrict acc) {
    (void)rows; (void)blocks; (void)blockBytes; (void)n; (void)x; (void)d; (void)o; (void)acc;
    __builtin_trap();
}
void tk_q4_packed_rows16_vnni(const void *rows, long blocks, long blockBytes, int format, long n, const int8_t *x,
                              const float *e, const float *s, const int32_t *start, float *restrict acc,
                              float *restrict out, long outStride) {
    (void)rows; (void)blocks; (void)blockBytes; (void)format; (void)n; (void)x; (void)e; (void)s; (void)start;
    (void)acc; (void)out; (void)outStride;
    __builtin_trap();
}
void tk_q8_packed_rows16_vnni(const void *rows, long blocks, long blockBytes, long n, const int8_t *x, const float *e,
                              const int32_t *start, float *restrict acc, float *restrict out, long outStride) {
    (void)rows; (void)blocks; (void)blockBytes; (void)n; (void)x; (void)e; (void)start; (void)acc; (void)out; (void)outStride;
    __builtin_trap();
}
void tk_q6k_packed_rows16_vnni(const void *rows, long blocks, long blockBytes, long n, const int8_t *x, const float *e,
                               const int32_t *o32, float *restrict acc, float *restrict out, long outStride) {
    (void)rows; (void)blocks; (void)blockBytes; (void)n; (void)x; (void)e; (void)o32; (void)acc; (void)out; (void)outStride;
    __builtin_trap();
}
void tk_quantize_by_block(const float *x, long n, long cols, int8_t *rowQ, float *rowDS, int8_t *q, float *d, float *s,
                          int32_t *o, int32_t *o32, int32_t *z8, int32_t *z16, int32_t *z128, float *e) {
    (void)x; (void)n; (void)cols; (void)rowQ; (void)rowDS; (void)q; (void)d; (void)s; (void)o; (void)o32; (void)z8; (void)z16; (void)z128;
    (void)e;
    __builtin_trap();
}
#endif
