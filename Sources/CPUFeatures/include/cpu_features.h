// What the CPU running this process can do, read once (cpuid and xgetbv on x86-64, the aux vector on
// arm64 Linux). Plain C so that it needs no compiler flags: Swift cannot run cpuid itself.
#ifndef TRANSFORMER_CPU_FEATURES_H
#define TRANSFORMER_CPU_FEATURES_H

#include <stdint.h>

// Bits of tk_cpu_features(). A vector feature is reported only when the OS also saves its registers.
enum {
    TK_CPU_AVX = 1u << 0,
    TK_CPU_AVX2 = 1u << 1,
    TK_CPU_FMA = 1u << 2,
    TK_CPU_F16C = 1u << 3,
    TK_CPU_AVX512F = 1u << 4,
    TK_CPU_AVX512BW = 1u << 5,
    TK_CPU_AVX512VL = 1u << 6,
    TK_CPU_AVX512VNNI = 1u << 7,
    TK_CPU_AVX512BF16 = 1u << 8,
    TK_CPU_AVXVNNI = 1u << 9,
    TK_CPU_NEON = 1u << 10,
    TK_CPU_DOTPROD = 1u << 11,
};

/// The feature bits above, computed on the first call.
uint64_t tk_cpu_features(void);

#endif
