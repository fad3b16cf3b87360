/* registry.c - every kernel set fastmlp is built with, and the CPU detection that says which
 * of them the CPU runs (see registry.h).
 *
 * A new instruction set is one row of `sets` below (with its detection, for a new
 * architecture), beside its kernels/<isa>.c.
 */
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

/* ---- CPU detection, one section per architecture ---- */

static int always(void)
{
    return 1;
}

#if FM_X86
static int x86_probed = 0, x86_avx2 = 0, x86_avx512 = 0, x86_avx512_bf16 = 0;

/* XCR0: which register states the OS saves on a context switch. */
static unsigned long long read_xcr0(void)
{
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

/* CPUID, and XGETBV to check that the operating system saves the ymm / zmm registers. */
static void x86_probe(void)
{
    unsigned int eax, ebx, ecx, edx;
    if (x86_probed)
        return;
    x86_probed = 1;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
        return;
    int osxsave = (ecx >> 27) & 1, avx = (ecx >> 28) & 1, fma = (ecx >> 12) & 1;
    if (!osxsave || !avx)
        return;
    unsigned long long xcr0 = read_xcr0();
    int ymm_state = (xcr0 & 0x6) == 0x6;                 /* SSE and AVX state */
    int zmm_state = ymm_state && (xcr0 & 0xE0) == 0xE0;  /* opmask, ZMM_Hi256, Hi16_ZMM */
    if (__get_cpuid_max(0, NULL) < 7)
        return;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    int avx2 = (ebx >> 5) & 1;
    int f = (ebx >> 16) & 1, dq = (ebx >> 17) & 1, bw = (ebx >> 30) & 1, vl = (ebx >> 31) & 1;
    x86_avx2 = ymm_state && avx2 && fma;
    x86_avx512 = x86_avx2 && zmm_state && f && dq && bw && vl;
    __cpuid_count(7, 1, eax, ebx, ecx, edx);
    x86_avx512_bf16 = x86_avx512 && ((eax >> 5) & 1);
}

static int x86_has_avx2(void)
{
    x86_probe();
    return x86_avx2;
}

static int x86_has_avx512(void)
{
    x86_probe();
    return x86_avx512;
}

static int x86_has_avx512_bf16(void)
{
    x86_probe();
    return x86_avx512_bf16;
}
#endif

/* ---- the registry ---- */

typedef struct {
    const fm_kernel_set *kernels;
    int (*runs_here)(void);   /* whether this CPU and OS run the set */
} registered_set;

/* Every set, the slowest first: the best that runs here is the last such. */
static const registered_set sets[] = {
    { .kernels = &fm_kernels_generic, .runs_here = always },
#if FM_X86
    { .kernels = &fm_kernels_avx2, .runs_here = x86_has_avx2 },
    { .kernels = &fm_kernels_avx512, .runs_here = x86_has_avx512 },
#endif
};
enum { N_SETS = sizeof sets / sizeof sets[0] };

static int initialised = 0;
static int runs[N_SETS];
static const fm_kernel_set *current = &fm_kernels_generic;
static char known[128] = "";
static char available[128] = "";
static char note[160] = "";
static int bf16_emulated = 0;   /* 1: bf16 products emulated even where the CPU has them */

static const fm_kernel_set *best(void)
{
    const fm_kernel_set *b = sets[0].kernels;
    for (int i = 0; i < N_SETS; i++)
        if (runs[i])
            b = sets[i].kernels;
    return b;
}

/* The set called `name`, or NULL; *is_known is 0 when no set has that name. */
static const fm_kernel_set *lookup(const char *name, int *is_known)
{
    *is_known = 1;
    if (name == NULL || name[0] == '\0' || strcmp(name, "auto") == 0)
        return best();
    for (int i = 0; i < N_SETS; i++)
        if (strcmp(name, sets[i].kernels->name) == 0)
            return runs[i] ? sets[i].kernels : NULL;
    /* The x86 names are known everywhere, so that a test asking for one on another
     * architecture hears "not supported", not "unknown". */
    *is_known = strcmp(name, "avx2") == 0 || strcmp(name, "avx512") == 0;
    return NULL;
}

/* Appends " name" (or "name" first) to a space-separated list of `size` bytes. */
static void append_name(char *list, size_t size, const char *name)
{
    size_t used = strlen(list);
    snprintf(list + used, size - used, "%s%s", used > 0 ? " " : "", name);
}

void fm_dispatch_init(void)
{
    if (initialised)
        return;
    initialised = 1;
    for (int i = 0; i < N_SETS; i++) {
        runs[i] = sets[i].runs_here();
        append_name(known, sizeof known, sets[i].kernels->name);
        if (runs[i])
            append_name(available, sizeof available, sets[i].kernels->name);
    }
    current = best();
    const char *emulate = getenv("FASTMLP_BF16");
    bf16_emulated = emulate != NULL && strcmp(emulate, "emulate") == 0;
    const char *env = getenv("FASTMLP_ISA");
    if (env != NULL && env[0] != '\0') {
        int is_known;
        const fm_kernel_set *k = lookup(env, &is_known);
        if (k != NULL)
            current = k;
        else
            snprintf(note, sizeof note, "FASTMLP_ISA=%.40s %s; using %s", env,
                     is_known ? "is not supported by this CPU" : "is not a known instruction set",
                     current->name);
    }
}

const fm_kernel_set *fm_kernels(void)
{
    fm_dispatch_init();
    return current;
}

const fm_pairs_set *fm_pairs(void)
{
    const fm_kernel_set *ks = fm_kernels();
#if FM_X86
    /* The avx512 set has no emulation of its own: its tiles would lengthen the build of the
     * largest file, for CPUs (AVX-512 without BF16) that AVX2's emulation serves. */
    if (ks == &fm_kernels_avx512)
        return !bf16_emulated && x86_has_avx512_bf16() ? &fm_pairs_avx512_bf16
                                                        : fm_kernels_avx2.pairs;
#endif
    return ks->pairs;
}

const char *fm_bf16_name(void)
{
    return fm_pairs()->name;
}

int fm_bf16_native(void)
{
    return fm_pairs()->native;
}

void fm_bf16_set_emulated(int emulated)
{
    fm_dispatch_init();
    bf16_emulated = emulated != 0;
}

const char *fm_isa_name(void)
{
    return fm_kernels()->name;
}

int fm_isa_set(const char *name)
{
    fm_dispatch_init();
    int is_known;
    const fm_kernel_set *k = lookup(name, &is_known);
    if (k == NULL)
        return is_known ? 2 : 1;
    current = k;
    return 0;
}

const char *fm_isa_known(void)
{
    fm_dispatch_init();
    return known;
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
