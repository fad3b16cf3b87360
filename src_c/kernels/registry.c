/* dispatch.c - CPU detection and the choice of micro-kernels (see dispatch.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/registry.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define FM_X86 1
#include <cpuid.h>
#else
#define FM_X86 0
#endif

static int initialised = 0;
static int have_avx2 = 0;
static int have_avx512 = 0;
static const fm_kernel_set *current = &fm_kernels_generic;
static char available[64] = "generic";
static char note[160] = "";

#if FM_X86
/* XCR0: which register states the OS saves on a context switch. */
static unsigned long long read_xcr0(void)
{
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

static void probe_cpu(void)
{
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
        return;
    int osxsave = (ecx >> 27) & 1, avx = (ecx >> 28) & 1, fma = (ecx >> 12) & 1;
    if (!osxsave || !avx)
        return;
    unsigned long long xcr0 = read_xcr0();
    int ymm_state = (xcr0 & 0x6) == 0x6;            /* SSE and AVX state */
    int zmm_state = ymm_state && (xcr0 & 0xE0) == 0xE0; /* opmask, ZMM_Hi256, Hi16_ZMM */
    if (__get_cpuid_max(0, NULL) < 7)
        return;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    int avx2 = (ebx >> 5) & 1;
    int f = (ebx >> 16) & 1, dq = (ebx >> 17) & 1, bw = (ebx >> 30) & 1, vl = (ebx >> 31) & 1;
    have_avx2 = ymm_state && avx2 && fma;
    have_avx512 = have_avx2 && zmm_state && f && dq && bw && vl;
}
#endif

static const fm_kernel_set *best(void)
{
#if FM_X86
    if (have_avx512)
        return &fm_kernels_avx512;
    if (have_avx2)
        return &fm_kernels_avx2;
#endif
    return &fm_kernels_generic;
}

/* The set called `name`, or NULL; *known is 0 when the name is not a set at all. */
static const fm_kernel_set *lookup(const char *name, int *known)
{
    *known = 1;
    if (name == NULL || name[0] == '\0' || strcmp(name, "auto") == 0)
        return best();
    if (strcmp(name, "generic") == 0)
        return &fm_kernels_generic;
#if FM_X86
    if (strcmp(name, "avx2") == 0)
        return have_avx2 ? &fm_kernels_avx2 : NULL;
    if (strcmp(name, "avx512") == 0)
        return have_avx512 ? &fm_kernels_avx512 : NULL;
#else
    if (strcmp(name, "avx2") == 0 || strcmp(name, "avx512") == 0)
        return NULL;
#endif
    *known = 0;
    return NULL;
}

void fm_dispatch_init(void)
{
    if (initialised)
        return;
    initialised = 1;
#if FM_X86
    probe_cpu();
#endif
    snprintf(available, sizeof available, "generic%s%s",
             have_avx2 ? " avx2" : "", have_avx512 ? " avx512" : "");
    current = best();
    const char *env = getenv("FASTMLP_ISA");
    if (env != NULL && env[0] != '\0') {
        int known;
        const fm_kernel_set *k = lookup(env, &known);
        if (k != NULL)
            current = k;
        else
            snprintf(note, sizeof note, "FASTMLP_ISA=%.40s %s; using %s", env,
                     known ? "is not supported by this CPU" : "is not a known instruction set",
                     current->name);
    }
}

const fm_kernel_set *fm_kernels(void)
{
    fm_dispatch_init();
    return current;
}

const char *fm_isa_name(void)
{
    return fm_kernels()->name;
}

int fm_isa_set(const char *name)
{
    fm_dispatch_init();
    int known;
    const fm_kernel_set *k = lookup(name, &known);
    if (k == NULL)
        return known ? 2 : 1;
    current = k;
    return 0;
}

int fm_isa_supported(const char *name)
{
    fm_dispatch_init();
    int known;
    return lookup(name, &known) != NULL;
}

const char *fm_isa_available(void)
{
    fm_dispatch_init();
    return available;
}

const char *fm_isa_note(void)
{
    fm_dispatch_init();
    return note;
}

const char *fm_compiler(void)
{
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#else
    return "unknown";
#endif
}
