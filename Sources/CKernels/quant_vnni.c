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
#endif
