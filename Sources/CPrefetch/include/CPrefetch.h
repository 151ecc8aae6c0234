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

#endif
