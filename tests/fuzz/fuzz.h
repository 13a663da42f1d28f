/* fuzz.h: what a fuzz target provides, for libFuzzer and for the plain replay driver. */
#ifndef ROSA_FUZZ_H
#define ROSA_FUZZ_H
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* One-time setup before the first input; returns 0, 77 (skip: files absent) or 1. */
int rosa_fuzz_init(void);
#endif
