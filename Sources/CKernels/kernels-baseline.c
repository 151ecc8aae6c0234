// The kernels with 4 lanes for any x86-64 (SSE2) or other CPU: the portable fallback.
#define LANES 4
#define NAME(f) f##_baseline
#include "kernels-body.h"
#include "attention-body.h"
#include "gemm-body.h"
