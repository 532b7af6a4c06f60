// bfloat16 GEMM with AVX-512 BF16: the Goto/BLIS loops of TensorKit's GemmFast.swift, with the
// packed panels in bfloat16 pairs so that one `vdpbf16ps` does two multiply-adds per Float32 lane.
//
//   packed A panel (MR rows):  per k pair q, MR dwords  (a[r][2q], a[r][2q+1])    broadcast per row
//   packed B panel (NR cols):  per k pair q, NR dwords  (b[2q][j], b[2q+1][j])    two zmm loads
//   micro-kernel: 12 × 32 tile = 24 zmm accumulators; per k pair 2 loads, 12 broadcasts, 24 vdpbf16ps
//
// Rounding happens once, while packing (vcvtne2ps2bf16: to nearest even; like every AVX-512 BF16
// instruction it treats subnormal inputs as zero). An odd k is padded with a zero pair half.
#include "ckernels.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define TK_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

enum { MR = 12, NR = 32, KC = 384, MC = 144, NC = 3072 };

int tk_has_bf16_kernels(void) { return 1; }

static long round_up(long x, long to) { return (x + to - 1) / to * to; }

// Block sizes for a product, balanced as GemmFast.swift does (k = 400 is two blocks of 200, not 384 + 16).
static void blocks(long m, long n, long k, long *kc0, long *mc0, long *nc0) {
    long kb = (k + KC - 1) / KC, mb = (m + MC - 1) / MC, nb = (n + NC - 1) / NC;
    *kc0 = round_up((k + kb - 1) / kb, 2);
    *mc0 = round_up((m + mb - 1) / mb, MR);
    *nc0 = round_up((n + nb - 1) / nb, NR);
}

size_t tk_gemm_bf16_workspace(long m, long n, long k) {
    long kc0, mc0, nc0;
    blocks(m, n, k, &kc0, &mc0, &nc0);
    // packed A and B in bf16 (2 bytes), one Float32 edge tile, each rounded up to a cache line
    return (size_t)(round_up(mc0 * kc0 * 2, 64) + round_up(nc0 * kc0 * 2, 64) + MR * NR * 4);
}

// Two Float32 as one dword of bfloat16: x0 in the low half (the even k), x1 in the high half.
TK_BF16 static inline uint32_t pair(float x0, float x1) {
    __m128bh h = _mm_cvtneps_pbh(_mm_set_ps(0, 0, x1, x0));
    return (uint32_t)_mm_cvtsi128_si32((__m128i)h);
}

// Pairs adjacent in memory (src[2q], src[2q+1], scaled by alpha) → d[q·stride], q < ⌈kc/2⌉; 16 pairs per conversion.
TK_BF16 static void pack_adjacent_pairs(const float *src, long kc, float alpha, uint32_t *d, long stride) {
    const __m512 va = _mm512_set1_ps(alpha);
    long q = 0;
    for (; 2 * q + 32 <= kc; q += 16) {
        uint32_t tmp[16];
        __m512 lo = _mm512_mul_ps(_mm512_loadu_ps(src + 2 * q), va), hi = _mm512_mul_ps(_mm512_loadu_ps(src + 2 * q + 16), va);
        _mm512_storeu_si512(tmp, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        for (int t = 0; t < 16; t++) d[(q + t) * stride] = tmp[t];
    }
    for (; q < (kc + 1) / 2; q++) d[q * stride] = pair(alpha * src[2 * q], 2 * q + 1 < kc ? alpha * src[2 * q + 1] : 0);
}

// Two k steps of 16 values each (x0 the even one) → 16 dwords of bf16 pairs, x0 in each low half.
TK_BF16 static inline __m512i interleave_pairs(__m512 x0, __m512 x1) {
    const __m512i order = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21,
                                           5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(order, (__m512i)_mm512_cvtne2ps_pbh(x1, x0));
}

// alpha·op(A)[row.., col..] (mc × kc) → ⌈mc/MR⌉ panels of kc/2 pairs × MR dwords; rows past mc are zero.
TK_BF16 static void pack_a(int transA, long mc, long kc, float alpha, const float *a, long lda, long row, long col,
                           uint32_t *dst) {
    const long pairs = (kc + 1) / 2;
    const __m512 va = _mm512_set1_ps(alpha);
    for (long i = 0; i < mc; i += MR) {
        const long rows = mc - i < MR ? mc - i : MR;
        if (!transA) {
            // op(A)[r][p] = a[r·lda + p]: the pair (p, p+1) of a row is adjacent.
            for (long r = 0; r < MR; r++) {
                if (r < rows) {
                    pack_adjacent_pairs(a + (row + i + r) * lda + col, kc, alpha, dst + r, MR);
                } else {
                    for (long q = 0; q < pairs; q++) dst[r + q * MR] = 0;
                }
            }
        } else {
            // op(A)[r][p] = a[p·lda + r]: steps p and p+1 are rows of a; interleave them.
            const __mmask16 m = (__mmask16)((1u << rows) - 1);
            for (long q = 0; q < pairs; q++) {
                const float *p0 = a + (col + 2 * q) * lda + row + i;
                __m512 x0 = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, p0), va);
                __m512 x1 = 2 * q + 1 < kc ? _mm512_mul_ps(_mm512_maskz_loadu_ps(m, p0 + lda), va) : _mm512_setzero_ps();
                _mm512_mask_storeu_epi32(dst + q * MR, 0x0FFF, interleave_pairs(x0, x1));
            }
        }
        dst += pairs * MR;
    }
}

// op(B)[row.., col..] (kc × nc) → ⌈nc/NR⌉ panels of kc/2 pairs × NR dwords; columns past nc are zero.
TK_BF16 static void pack_b(int transB, long kc, long nc, const float *b, long ldb, long row, long col, uint32_t *dst) {
    const long pairs = (kc + 1) / 2;
    for (long j = 0; j < nc; j += NR) {
        const long cols = nc - j < NR ? nc - j : NR;
        if (transB) {
            // op(B)[p][c] = b[c·ldb + p]: a column's pair is adjacent in memory.
            for (long cc = 0; cc < NR; cc++) {
                if (cc < cols) {
                    pack_adjacent_pairs(b + (col + j + cc) * ldb + row, kc, 1, dst + cc, NR);
                } else {
                    for (long q = 0; q < pairs; q++) dst[cc + q * NR] = 0;
                }
            }
        } else {
            // op(B)[p][c] = b[p·ldb + c]: steps p and p+1 are rows of b; interleave 16 columns at a time.
            for (long q = 0; q < pairs; q++) {
                const float *p0 = b + (row + 2 * q) * ldb + col + j;
                const int second = 2 * q + 1 < kc;
                for (long h = 0; h < NR; h += 16) {
                    long n16 = cols - h;
                    __mmask16 m = n16 >= 16 ? 0xFFFF : n16 <= 0 ? 0 : (__mmask16)((1u << n16) - 1);
                    __m512 x0 = _mm512_maskz_loadu_ps(m, p0 + h);
                    __m512 x1 = second ? _mm512_maskz_loadu_ps(m, p0 + ldb + h) : _mm512_setzero_ps();
                    _mm512_storeu_si512(dst + q * NR + h, interleave_pairs(x0, x1));
                }
            }
        }
        dst += pairs * NR;
    }
}

#define ROW(r, i)                                                                     \
    {                                                                                 \
        __m512bh x = (__m512bh)_mm512_set1_epi32((int)pa[i]);                         \
        c##r##0 = _mm512_dpbf16_ps(c##r##0, b0, x);                                   \
        c##r##1 = _mm512_dpbf16_ps(c##r##1, b1, x);                                   \
    }
#define STORE(r, i)                                                                                       \
    {                                                                                                     \
        float *cr = c + (i) * ldc;                                                                        \
        if (beta == 0) {                                                                                  \
            _mm512_storeu_ps(cr, c##r##0);                                                                \
            _mm512_storeu_ps(cr + 16, c##r##1);                                                           \
        } else {                                                                                          \
            _mm512_storeu_ps(cr, _mm512_fmadd_ps(vb, _mm512_loadu_ps(cr), c##r##0));                      \
            _mm512_storeu_ps(cr + 16, _mm512_fmadd_ps(vb, _mm512_loadu_ps(cr + 16), c##r##1));            \
        }                                                                                                 \
    }

// C[12×32] = A panel · B panel + beta·C over `pairs` k pairs.
TK_BF16 __attribute__((noinline)) static void kernel12x32(long pairs, const uint32_t *pa, const uint32_t *pb, float *c,
                                                          long ldc, float beta) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    __m512 c80 = c00, c81 = c00, c90 = c00, c91 = c00, cA0 = c00, cA1 = c00, cB0 = c00, cB1 = c00;
    for (long q = 0; q < pairs; q++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(pb), b1 = (__m512bh)_mm512_loadu_si512(pb + 16);
        ROW(0, 0) ROW(1, 1) ROW(2, 2) ROW(3, 3) ROW(4, 4) ROW(5, 5)
        ROW(6, 6) ROW(7, 7) ROW(8, 8) ROW(9, 9) ROW(A, 10) ROW(B, 11)
        pa += MR;
        pb += NR;
    }
    const __m512 vb = _mm512_set1_ps(beta);
    STORE(0, 0) STORE(1, 1) STORE(2, 2) STORE(3, 3) STORE(4, 4) STORE(5, 5)
    STORE(6, 6) STORE(7, 7) STORE(8, 8) STORE(9, 9) STORE(A, 10) STORE(B, 11)
}

TK_BF16 void tk_gemm_bf16(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                          const float *b, long ldb, float beta, float *c, long ldc, void *workspace) {
    if (m <= 0 || n <= 0) return;
    long kc0, mc0, nc0;
    blocks(m, n, k > 0 ? k : 1, &kc0, &mc0, &nc0);
    uint32_t *packedA = (uint32_t *)workspace;
    uint32_t *packedB = (uint32_t *)((char *)workspace + round_up(mc0 * kc0 * 2, 64));
    float *edge = (float *)((char *)packedB + round_up(nc0 * kc0 * 2, 64));
    if (k <= 0 || alpha == 0) {
        for (long i = 0; i < m; i++)
            for (long j = 0; j < n; j++) c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j];
        return;
    }
    for (long jc = 0; jc < n; jc += nc0) {
        const long nc = n - jc < nc0 ? n - jc : nc0;
        for (long pc = 0; pc < k; pc += kc0) {
            const long kc = k - pc < kc0 ? k - pc : kc0, pairs = (kc + 1) / 2;
            pack_b(transB, kc, nc, b, ldb, pc, jc, packedB);
            const float betaHere = pc == 0 ? beta : 1;
            for (long ic = 0; ic < m; ic += mc0) {
                const long mc = m - ic < mc0 ? m - ic : mc0;
                pack_a(transA, mc, kc, alpha, a, lda, ic, pc, packedA);
                for (long jr = 0; jr < nc; jr += NR) {
                    const long cols = nc - jr < NR ? nc - jr : NR;
                    const uint32_t *bPanel = packedB + jr * pairs;
                    for (long ir = 0; ir < mc; ir += MR) {
                        const long rows = mc - ir < MR ? mc - ir : MR;
                        const uint32_t *aPanel = packedA + ir * pairs;
                        float *tile = c + (ic + ir) * ldc + jc + jr;
                        if (rows == MR && cols == NR) {
                            kernel12x32(pairs, aPanel, bPanel, tile, ldc, betaHere);
                        } else {
                            // Edge: the full tile into scratch, then the valid rows × cols into C.
                            kernel12x32(pairs, aPanel, bPanel, edge, NR, 0);
                            for (long r = 0; r < rows; r++) {
                                const float *s = edge + r * NR;
                                float *d = tile + r * ldc;
                                for (long j = 0; j < cols; j++)
                                    d[j] = betaHere == 0 ? s[j] : betaHere == 1 ? d[j] + s[j] : s[j] + betaHere * d[j];
                            }
                        }
                    }
                }
            }
        }
    }
}

#else
int tk_has_bf16_kernels(void) { return 0; }
size_t tk_gemm_bf16_workspace(long m, long n, long k) { (void)m; (void)n; (void)k; return 64; }
void tk_gemm_bf16(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda, const float *b,
                  long ldb, float beta, float *c, long ldc, void *workspace) {
    (void)transA; (void)transB; (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda; (void)b; (void)ldb;
    (void)beta; (void)c; (void)ldc; (void)workspace;
    __builtin_trap();  // KernelSet never calls it where tk_has_bf16_kernels() is 0
}
#endif
