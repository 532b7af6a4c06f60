// Hot kernels that need CPU features Swift cannot ask for one function at a time. Each is compiled
// with a clang `target` attribute, so this module needs no compiler flags and builds on any x86-64;
// TensorKit's `KernelSet` calls one only when cpuid says the CPU has what it needs.
#ifndef TRANSFORMER_CKERNELS_H
#define TRANSFORMER_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

/// Whether this build contains the AVX-512 BF16 kernels (x86-64 only).
int tk_has_bf16_kernels(void);

/// Bytes of workspace `tk_gemm_bf16` needs for an m × n × k product (64-byte aligned by the caller).
size_t tk_gemm_bf16_workspace(long m, long n, long k);

/// C[m×n] = alpha·op(A)·op(B) + beta·C with both operands rounded to bfloat16 (to nearest even) while
/// they are packed, products summed in Float32 by `vdpbf16ps` — the BLAS SGEMM contract on row-major
/// storage. Needs AVX-512 F, BW and BF16; one thread (the caller splits the work).
void tk_gemm_bf16(int transA, int transB, long m, long n, long k, float alpha,
                  const float *a, long lda, const float *b, long ldb,
                  float beta, float *c, long ldc, void *workspace);

/// Whether this build contains the AVX-512 VNNI kernels (x86-64 only).
int tk_has_vnni_kernels(void);

/// The formats `tk_q4_packed_rows_vnni` reads.
enum { TK_Q4_0 = 0, TK_Q4_1 = 1, TK_Q5_0 = 2, TK_Q4_K = 3 };

/// Eight 4- or 5-bit rows (`format` Q4_0, Q4_1, Q5_0 or Q4_K, repacked as TensorKit's `PackedRows`: `blocks`
/// blocks of `blockBytes` from `rows`) times `n` inputs rounded to 8 bits, side by side per block (block b of input
/// i: bytes `x + 32·(b·n + i)`, scale `d[b·n + i]`, scaled sum `s[b·n + i]`, integer sums of bytes 0…15 and 16…31
/// `o[2(b·n + i)]` and `o[2(b·n + i) + 1]`): `acc[8i + r]` = row r · input i. `offset`: Q4_0's 8 or Q5_0's 16 (their
/// weights being d·(q − offset), taken off the integer sums), 0 for Q4_1 and Q4_K (their minimums times `s`).
/// Needs AVX-512 BW, VL and VNNI.
void tk_q4_packed_rows_vnni(const void *rows, long blocks, long blockBytes, int format, long n, const int8_t *x,
                            const float *d, const float *s, const int32_t *o, int offset, float *restrict acc);

/// Eight Q8_0 rows (repacked as `PackedRows`) times `n` 8-bit inputs laid out as above: `acc[8i + r]` = row r · input i.
void tk_q8_packed_rows_vnni(const void *rows, long blocks, long blockBytes, long n, const int8_t *x, const float *d,
                            float *restrict acc);

/// Eight Q6_K rows (repacked as `PackedRows`) times `n` 8-bit inputs laid out as above (with the sums `o`):
/// `acc[8i + r]` = row r · input i.
void tk_q6k_packed_rows_vnni(const void *rows, long blocks, long blockBytes, long n, const int8_t *x, const float *d,
                             const int32_t *o, float *restrict acc);

/// Sixteen rows at once, for n > 1: the packed groups at `rows` and `rows + blocks·blockBytes` (rows r…r+7 and
/// r+8…r+15) in the 16 lanes of 512-bit registers, the same results bit for bit as two calls of the 8-row kernel.
/// `acc`: 16·n floats of scratch; row r + j · input i goes to `out[i·outStride + j]`. Q4_0, Q5_0 and Q8_0 start their
/// integer sums at `start[b·n + i]` (−8, −16 or −128 times Σx of block b of input i; NULL for Q4_1 and Q4_K, which take
/// their minimums times `s`); Q6_K starts its halves at `o32`, −32 times the half sums `o` above. The inputs'
/// scales come as exponents, `e[b·n + i]` = log2 d (−∞ for 0): each d must be a power of two.
void tk_q4_packed_rows16_vnni(const void *rows, long blocks, long blockBytes, int format, long n, const int8_t *x,
                              const float *e, const float *s, const int32_t *start, float *restrict acc,
                              float *restrict out, long outStride);
void tk_q8_packed_rows16_vnni(const void *rows, long blocks, long blockBytes, long n, const int8_t *x, const float *e,
                              const int32_t *start, float *restrict acc, float *restrict out, long outStride);
void tk_q6k_packed_rows16_vnni(const void *rows, long blocks, long blockBytes, long n, const int8_t *x, const float *e,
                               const int32_t *o32, float *restrict acc, float *restrict out, long outStride);

/// n rows of `cols` floats rounded to 8 bits per block of 32 as TensorKit's `quantizeActivations` does (power-of-two
/// scales), written row by row (bytes at rowQ + i·cols; scales at rowDS + 2i·blocks, scaled sums `blocks` after) and
/// side by side per block for the kernels above (block b of input i at j = b·n + i: bytes q + 32j, d[j], s[j], the
/// half sums o[2j] and o[2j + 1] and those times −32 at o32, −8, −16 and −128 times Σq at z8[j], z16[j], z128[j],
/// e[j] = log2 d[j], −∞ for 0).
void tk_quantize_by_block(const float *x, long n, long cols, int8_t *rowQ, float *rowDS, int8_t *q, float *d, float *s,
                          int32_t *o, int32_t *o32, int32_t *z8, int32_t *z16, int32_t *z128, float *e);
#endif
