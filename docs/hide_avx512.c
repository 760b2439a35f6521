/* hide_avx512.c: an LD_PRELOAD library that hides AVX-512 from a process on Linux x86-64, so that
 * numpy, OpenBLAS, ONNX Runtime (MLAS) and torch pick the AVX2 / FMA3 kernels an AVX2-only CPU runs.
 * Used by docs/bench_avx2.py; build: cc -O2 -shared -fPIC -o hide_avx512.so hide_avx512.c
 *
 * How: CPUID faulting (arch_prctl ARCH_SET_CPUID 0; the CPU flag "cpuid_fault") makes every CPUID
 * instruction of the process raise SIGSEGV. The handler runs the real CPUID with faulting off, clears
 * the AVX-512 feature bits (leaf 7, and the AVX-512 state components of leaf 0xD), writes the result
 * into the interrupted registers and steps over the two-byte instruction. Threads inherit the setting;
 * exec resets it, and LD_PRELOAD in the environment sets it again in child processes.
 *
 * Failure modes: exits with status 70 and a line on stderr where the CPU or kernel has no CPUID
 * faulting. A SIGSEGV that is not a CPUID restores the default action and crashes as it would have.
 * Code that installs its own SIGSEGV handler after this one (Python's faulthandler) takes the traps
 * over: run without PYTHONFAULTHANDLER. glibc picks its own string functions before this library
 * loads (set GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F,... for those). Set HIDE_AVX512_VERBOSE=1 to
 * print how many CPUIDs each process trapped when it exits.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

/* leaf 7, subleaf 0: EBX AVX512F, DQ, IFMA, PF, ER, CD, BW, VL; ECX VBMI, VBMI2, VNNI, BITALG,
 * VPOPCNTDQ; EDX 4VNNIW, 4FMAPS, VP2INTERSECT, FP16. Leaf 7 subleaf 1: EAX BF16. Leaf 0xD: XCR0
 * components 5-7 (opmask, ZMM_Hi256, Hi16_ZMM). */
#define LEAF7_EBX ((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31))
#define LEAF7_ECX ((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14))
#define LEAF7_EDX ((1u << 2) | (1u << 3) | (1u << 8) | (1u << 23))
#define LEAF7_1_EAX (1u << 5)
#define LEAFD_EAX (0x7u << 5)

static volatile long trapped = 0;

static void on_sigsegv(int sig, siginfo_t *info, void *context) {
    (void)sig;
    (void)info;
    greg_t *r = ((ucontext_t *)context)->uc_mcontext.gregs;
    const uint8_t *ip = (const uint8_t *)r[REG_RIP];
    if (ip[0] != 0x0f || ip[1] != 0xa2) {
        signal(SIGSEGV, SIG_DFL);  /* a real fault: returning re-runs it under the default action */
        return;
    }
    uint32_t leaf = (uint32_t)r[REG_RAX], subleaf = (uint32_t)r[REG_RCX], a, b, c, d;
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1);
    __cpuid_count(leaf, subleaf, a, b, c, d);
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0);
    if (leaf == 7 && subleaf == 0) {
        b &= ~LEAF7_EBX;
        c &= ~LEAF7_ECX;
        d &= ~LEAF7_EDX;
    } else if (leaf == 7 && subleaf == 1) {
        a &= ~LEAF7_1_EAX;
    } else if (leaf == 0xd && subleaf == 0) {
        a &= ~LEAFD_EAX;
    }
    r[REG_RAX] = a;
    r[REG_RBX] = b;
    r[REG_RCX] = c;
    r[REG_RDX] = d;
    r[REG_RIP] += 2;
    trapped++;
}

__attribute__((constructor)) static void hide_avx512(void) {
    struct sigaction action = {0};
    action.sa_sigaction = on_sigsegv;
    action.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &action, NULL);
    if (syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) != 0) {
        perror("hide_avx512: no CPUID faulting on this CPU or kernel (arch_prctl ARCH_SET_CPUID)");
        exit(70);
    }
}

__attribute__((destructor)) static void report(void) {
    if (getenv("HIDE_AVX512_VERBOSE"))
        fprintf(stderr, "hide_avx512: %ld CPUID instructions trapped in process %d\n", trapped, (int)getpid());
}
