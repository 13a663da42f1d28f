/* bf16_agree.h: how closely a bf16 run of a golden case agrees with the float32 CPU backend
 * (shared by test_cuda_bf16, on a device, and test_bf16_emulation, the CPU's emulation of the
 * device's rounding), and the thresholds both enforce, per case. */
#ifndef ROSA_BF16_AGREE_H
#define ROSA_BF16_AGREE_H

#include "rosa.h"

#define TU_MAX_ROSA_LAYERS 16

typedef struct tu_agree {
    double top1;                      /* fraction of positions with the same argmax */
    double max_logit_diff;            /* max |logit difference| over all positions */
    double dest[TU_MAX_ROSA_LAYERS];  /* per ROSA layer: fraction of identical destinations */
    double worst_dest;                /* min over layers (1 without ROSA) */
    int nrl;
} tu_agree;

/* Thresholds per golden case: see docs/CUDA.md, "bf16 thresholds", for where they come from. */
typedef struct tu_bf16_limits {
    const char *name;
    double min_dest[TU_MAX_ROSA_LAYERS]; /* per ROSA layer, in order */
    double min_top1, max_logit_diff;
} tu_bf16_limits;

extern const tu_bf16_limits tu_bf16_cases[3];

/* Run golden case `name` on the float32 CPU backend and on `dev` ("cuda": bf16 on the device;
 * "cpu": the CPU backend with its bf16 emulation switched on), feeding the prompt in uneven
 * chunks (37, 1, 1, 16, ...) so prefill tiles and decode steps both take part; print one line
 * of the numbers and return them. */
void tu_bf16_agreement(const char *name, const char *dev, tu_agree *out);
/* ck_assert the thresholds of `lim` on `a` */
void tu_bf16_check(const tu_bf16_limits *lim, const tu_agree *a);
#endif
