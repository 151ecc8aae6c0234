#ifndef SRDPR_CSHAREDMEMORY_H
#define SRDPR_CSHAREDMEMORY_H
#include <stdint.h>

/// Acquire/release accesses to the 32-bit state words of a mapping shared between processes (the
/// same-host ring lanes of Collectives/SharedMemoryLane.swift): Swift has no spelling for an
/// atomic access at an arbitrary address.

static inline uint32_t srdpr_load_acquire(const uint32_t *word) {
    return __atomic_load_n(word, __ATOMIC_ACQUIRE);
}

static inline void srdpr_store_release(uint32_t *word, uint32_t value) {
    __atomic_store_n(word, value, __ATOMIC_RELEASE);
}

/// The build needs one C file per target; every function is inline above.
int srdpr_shared_memory_abi_version(void);

#endif
