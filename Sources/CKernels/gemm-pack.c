// The packed weight layout of srdpr_gemm_rows (gemm-body.h), the same for both builds.
#include <string.h>
#include "CKernels.h"

#define PANEL 16  // gemm-body.h's GEMM_PANEL

long srdpr_gemm_packed_floats(long outDim, long inDim) {
    return (outDim + PANEL - 1) / PANEL * PANEL * (inDim + 1);
}

void srdpr_gemm_pack_weights(float *packed, const float *weight, const float *bias, long outDim, long inDim) {
    for (long o0 = 0; o0 < outDim; o0 += PANEL) {
        float *panel = packed + o0 * (inDim + 1);
        long columns = outDim - o0 < PANEL ? outDim - o0 : PANEL;
        memset(panel, 0, PANEL * (inDim + 1) * sizeof(float));  // columns past outDim stay 0
        for (long c = 0; c < columns; c++) panel[c] = bias ? bias[o0 + c] : 0.f;
        // Row by row of the weight (sequential reads); the panel is 16 x inDim floats, cache-resident.
        for (long c = 0; c < columns; c++) {
            const float *row = weight + (o0 + c) * inDim;
            for (long k = 0; k < inDim; k++) panel[PANEL + k * PANEL + c] = row[k];
        }
    }
}
