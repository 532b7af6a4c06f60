#include "cpu_features.h"

#include <stdio.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

// xgetbv without the intrinsic (which would need the xsave target feature): XCR0's state bits.
static uint64_t xcr0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

static uint64_t detect(void) {
    uint32_t a, b, c, d;
    uint64_t f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const int osxsave = (c >> 27) & 1;
    const uint64_t xcr = osxsave ? xcr0() : 0;
    const int ymm = (xcr & 0x6) == 0x6;      // SSE and AVX state
    const int zmm = ymm && (xcr & 0xE0) == 0xE0;  // opmask, upper ZMM0-15, ZMM16-31
    if (ymm && ((c >> 28) & 1)) f |= TK_CPU_AVX;
    if (ymm && ((c >> 12) & 1)) f |= TK_CPU_FMA;
    if (ymm && ((c >> 29) & 1)) f |= TK_CPU_F16C;
    uint32_t maxLeaf = __get_cpuid_max(0, 0);
    if (maxLeaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        const uint32_t subleaves = a;
        if (ymm && ((b >> 5) & 1)) f |= TK_CPU_AVX2;
        if (zmm && ((b >> 16) & 1)) f |= TK_CPU_AVX512F;
        if (zmm && ((b >> 30) & 1)) f |= TK_CPU_AVX512BW;
        if (zmm && ((b >> 31) & 1)) f |= TK_CPU_AVX512VL;
        if (zmm && ((c >> 11) & 1)) f |= TK_CPU_AVX512VNNI;
        if (subleaves >= 1) {
            __cpuid_count(7, 1, a, b, c, d);
            if (ymm && ((a >> 4) & 1)) f |= TK_CPU_AVXVNNI;
            if (zmm && ((a >> 5) & 1)) f |= TK_CPU_AVX512BF16;
        }
    }
    return f;
}

#elif defined(__aarch64__)
#if defined(__linux__)
#include <sys/auxv.h>
#endif

static uint64_t detect(void) {
    uint64_t f = TK_CPU_NEON;  // Advanced SIMD is part of every AArch64 CPU
#if defined(__linux__)
    if (getauxval(AT_HWCAP) & (1ul << 20)) f |= TK_CPU_DOTPROD;  // HWCAP_ASIMDDP
#elif defined(__APPLE__)
    f |= TK_CPU_DOTPROD;  // every Apple arm64 CPU has it
#endif
    return f;
}

#else
static uint64_t detect(void) { return 0; }
#endif

uint64_t tk_cpu_features(void) {
    static uint64_t cached = ~0ull;
    uint64_t v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v == ~0ull) {
        v = detect();
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}

#if defined(TK_REQUIRE_AVX2) && (defined(__x86_64__) || defined(__i386__))
// The Swift modules of this build were compiled for Haswell (AVX2 + FMA): on an older CPU their first
// vector instruction would stop the process with SIGILL. Say so instead, before any of them runs.
__attribute__((constructor)) static void tk_require_avx2(void) {
    const uint64_t need = TK_CPU_AVX2 | TK_CPU_FMA;
    if ((tk_cpu_features() & need) != need) {
        fputs("transformer: this build needs a CPU with AVX2 and FMA (Intel 2013 and later, AMD 2015 and later), "
              "and this one lacks them. Rebuild for generic x86-64: TRANSFORMER_PORTABLE=1 swift build -c release\n",
              stderr);
        exit(1);
    }
}
#endif
