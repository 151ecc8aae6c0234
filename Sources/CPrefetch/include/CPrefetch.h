#ifndef SRDPR_CPREFETCH_H
#define SRDPR_CPREFETCH_H
#include <stddef.h>

/// Asks the CPU to start loading `count` bytes from `p` into its L2 cache (a read hint, never a fault;
/// L1 would be thrashed by several 3 KB samples in flight):
/// ByteDataset issues it for the next samples of a batch while it decodes the current one.
static inline void srdpr_prefetch(const void *p, size_t count) {
    const char *c = (const char *)p;
    for (size_t i = 0; i < count; i += 64) __builtin_prefetch(c + i, 0, 2);
}

/// Asks the CPU to translate the addresses of the 4 KB pages under `count` bytes from `p` (one line
/// each): in a virtual machine a TLB miss is a two-level page walk, which ByteDataset starts well
/// before the sample's lines are loaded.
static inline void srdpr_prefetch_pages(const void *p, size_t count) {
    const char *c = (const char *)p;
    __builtin_prefetch(c, 0, 2);
    for (size_t i = 4096 - ((size_t)c & 4095); i < count; i += 4096) __builtin_prefetch(c + i, 0, 2);
}

#endif
