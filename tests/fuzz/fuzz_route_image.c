/* fuzz_route_image.c: fuzz target for the structural check of a route read from a file
 * (rosa__route_check, engine/rosa/rosa_sam_check.c), the guard of session restore.
 *
 * Input: one route as a session file stores it (docs/SESSIONS.md, "per route"): the 22 header
 * words, then the used bytes of its six arrays, and nothing else (no checksum: the fuzzer goes
 * straight to the checks that a recomputed checksum would let a forged file reach).  The route
 * is rebuilt exactly as rosa__routes_read does (header check, byte count, exact-size arrays);
 * then, beyond "no crash": a route that passes rosa__route_check must take 200 more steps
 * (symbols drawn from a hash of the input, alone and then with a fresh route in a group)
 * without a sanitizer report or a hang.  Seeds (corpus/fuzz_route_image): routes built from
 * random, periodic, wide-alphabet and repetitive streams. */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "rosa.h"
#include "rosa/rosa_sam.h"

int rosa_fuzz_init(void) { return 0; }

static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* 200 steps of r: 100 alone, 100 in a group with a fresh route. */
static void steps(rosa__route *r, uint64_t seed) {
    enum { T = 100 };
    uint8_t q[2 * T], k[2 * T], v[2 * T];
    int16_t vo[2 * T];
    int32_t de[2 * T];
    unsigned a = 2 + (unsigned)(seed % 255);
    for (int t = 0; t < 2 * T; t++) {
        uint64_t x = mix(seed + (uint64_t)t);
        q[t] = (uint8_t)(x % a);
        k[t] = (uint8_t)((x >> 16) % a);
        v[t] = (uint8_t)(x >> 32);
    }
    if (rosa__route_run(r, T, q, k, v, 1, vo, de)) return;
    rosa__route fresh;
    rosa__route_init(&fresh);
    rosa__route *rp[2] = {r, &fresh};
    (void)rosa__routes_run(rp, 2, T / 2, q, k, v, 2, 1, vo, de);
    rosa__route_free(&fresh);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint32_t w[ROSA__ROUTE_HDR_WORDS];
    if (size < sizeof w) return 0;
    memcpy(w, data, sizeof w);
    rosa__route_hdr h;
    rosa__route_hdr_unpack(w, &h);
    if (rosa__route_check_hdr(&h)) return 0;
    uint64_t bytes = ((uint64_t)h.nst + h.npool + 2ull * h.capx + h.nsample + 3ull * h.ncells) * 4 +
                     (uint64_t)h.nruns * ROSA__RUN_BYTES;
    if (bytes != size - sizeof w) return 0; /* bounds every allocation by the input's size */
    rosa__route r;
    rosa__route_init(&r);
    if (!rosa__route_from_hdr(&r, &h)) {
        void *p[ROSA__ROUTE_NARRAYS];
        size_t b[ROSA__ROUTE_NARRAYS], off = sizeof w;
        rosa__route_arrays(&r, p, b);
        for (int i = 0; i < ROSA__ROUTE_NARRAYS; i++)
            if (b[i]) {
                memcpy(p[i], data + off, b[i]);
                off += b[i];
            }
        uint64_t seed = 0;
        for (size_t i = 0; i < size; i += 64) seed = mix(seed ^ data[i] ^ (uint64_t)i);
        if (!rosa__route_check(&r)) steps(&r, seed);
    }
    rosa__route_free(&r);
    return 0;
}
