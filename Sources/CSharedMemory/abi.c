#include "CSharedMemory.h"

int srdpr_shared_memory_abi_version(void) { return 1; }
