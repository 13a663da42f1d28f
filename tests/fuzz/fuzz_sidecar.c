/* fuzz_sidecar.c: fuzz target for the --session-dir sidecar reader (server/session_files.c:
 * srv_sfile_peek, srv_sfile_read_side), which reads files another process (a replica, a crash,
 * a person) may have left in the directory.  Built like fuzz_request.c: a libFuzzer target with
 * -DROSA_LIBFUZZER, else a program that replays files given on the command line and then runs
 * a seeded mutation loop over a valid sidecar it builds (what ctest runs under ASan/UBSan).
 * What must hold: never a crash or an over-read; what is accepted is consistent (key of 1..199
 * bytes without NUL, token count and file size agree, ids below the vocabulary). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "session_files.h"

#define VOCAB 1000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];
static long accepted;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/rosa-fuzz-sidecar-%ld", (long)getpid());
    }
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    srv_side_info a, b;
    int32_t *toks = NULL;
    int pa = srv_sfile_peek(path, &a);
    int rb = srv_sfile_read_side(path, &b, &toks, VOCAB);
    if (rb == 0) {
        accepted++;
        if (pa != 0 || strcmp(a.id, b.id) || a.n != b.n) abort(); /* implies the peek */
        size_t klen = strlen(b.id);
        if (klen < 1 || klen > SRV_SIDE_MAX_ID || b.n < 0 || b.n > SRV_SIDE_MAX_TOKENS) abort();
        if (b.side_bytes != SRV_SIDE_HDR + klen + 4 * (uint64_t)b.n || b.side_bytes != size)
            abort();
        for (int64_t i = 0; i < b.n; i++)
            if (toks[i] < 0 || toks[i] >= VOCAB) abort();
    } else if (toks) {
        abort(); /* nothing handed out on error */
    }
    free(toks);
    unlink(path);
    return 0;
}

#ifndef ROSA_LIBFUZZER
static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001B3ull;
    return h;
}

static void put(uint8_t *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* a valid sidecar of key "owner/chat-1" and nt tokens */
static size_t seed(uint8_t *b, int nt) {
    const char *key = "owner/chat-1";
    size_t k = strlen(key), n = SRV_SIDE_HDR + k + 4 * (size_t)nt;
    memset(b, 0, SRV_SIDE_HDR);
    memcpy(b, SRV_SIDE_MAGIC, 8);
    put(b + 8, SRV_SIDE_VERSION, 4);
    put(b + 12, k, 4);
    put(b + 16, (uint64_t)nt, 8);
    put(b + 24, 123456, 8);
    put(b + 32, 0xABCDEF, 8);
    memcpy(b + SRV_SIDE_HDR, key, k);
    for (int i = 0; i < nt; i++) put(b + SRV_SIDE_HDR + k + 4 * i, (uint64_t)(i * 7 % VOCAB), 4);
    put(b + 40, fnv(fnv(0xCBF29CE484222325ull, b, 40), b + SRV_SIDE_HDR, n - SRV_SIDE_HDR), 8);
    return n;
}

static uint64_t rng = 0x5eed;
static uint32_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

int main(int argc, char **argv) {
    static uint8_t buf[1 << 16];
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) continue;
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
    }
    size_t n0 = seed(buf, 40);
    srv_side_info si;
    int32_t *t = NULL;
    LLVMFuzzerTestOneInput(buf, n0); /* the seed itself must be accepted */
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, n0, f) != n0) return 1;
    fclose(f);
    if (srv_sfile_read_side(path, &si, &t, VOCAB) != 0 || si.n != 40) {
        fprintf(stderr, "fuzz_sidecar: the seed sidecar was refused\n");
        return 1;
    }
    free(t);
    unlink(path);
    int iters = getenv("FUZZ_ITERS") ? atoi(getenv("FUZZ_ITERS")) : 20000;
    for (int it = 0; it < iters; it++) {
        size_t n = seed(buf, (int)(next() % 64));
        int muts = 1 + (int)(next() % 3);
        for (int m = 0; m < muts && n > 0; m++) {
            size_t pos = next() % n;
            switch (next() % 5) {
            case 0: buf[pos] ^= (uint8_t)(1u << (next() % 8)); break;
            case 1: buf[pos] = (uint8_t)next(); break;
            case 2: n = pos; break; /* truncated */
            case 3: put(buf + 8 + 4 * (next() % 4), next() % 2 ? 0xFFFFFFFFu : next() % 300, 4);
                    break; /* a header field: version, key bytes, token count */
            case 4: if (n + 8 < sizeof buf) { put(buf + n, next(), 4); n += 4; } break;
            }
        }
        LLVMFuzzerTestOneInput(buf, n);
    }
    printf("fuzz_sidecar: %d mutated sidecars read, %ld accepted\n", iters, accepted);
    return 0;
}
#endif
