/* replay_main.c: run a fuzz target without libFuzzer, so that gcc builds compile and run it
 * (under ASan in CI): every file of the seed paths given, then --random N inputs derived from
 * them by a fixed-seed mutator (byte flips, inserts, deletes, truncations, splices, random
 * bytes).  Exit 0, or 77 when the target's files are absent. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

typedef struct {
    unsigned char *p;
    size_t n;
} blob;

static blob *seeds;
static size_t nseeds, capseeds;

static void add_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(n > 0 ? (size_t)n : 1);
    if (p && n >= 0 && fread(p, 1, (size_t)n, f) == (size_t)n) {
        if (nseeds == capseeds) {
            capseeds = capseeds ? capseeds * 2 : 64;
            seeds = realloc(seeds, capseeds * sizeof *seeds);
        }
        seeds[nseeds++] = (blob){p, (size_t)n};
    } else {
        free(p);
    }
    fclose(f);
}

static void add_path(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return;
    if (!S_ISDIR(st.st_mode)) {
        add_file(path);
        return;
    }
    DIR *d = opendir(path);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", path, e->d_name);
        add_file(full);
    }
    closedir(d);
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* A mutated copy of a random seed (or fresh random bytes). */
static blob mutate(void) {
    blob s = nseeds ? seeds[rnd() % nseeds] : (blob){NULL, 0};
    size_t cap = s.n * 2 + 64;
    unsigned char *p = malloc(cap);
    size_t n = 0;
    switch (rnd() % 5) {
    case 0: /* random bytes */
        n = rnd() % 64;
        for (size_t i = 0; i < n; i++) p[i] = (unsigned char)rnd();
        break;
    case 1: /* truncation */
        n = s.n ? rnd() % (s.n + 1) : 0;
        if (n) memcpy(p, s.p, n);
        break;
    case 2: { /* splice with another seed */
        blob t = nseeds ? seeds[rnd() % nseeds] : (blob){NULL, 0};
        size_t a = s.n ? rnd() % (s.n + 1) : 0, b = t.n ? rnd() % (t.n + 1) : 0;
        if (a + (t.n - b) > cap) b = t.n - (cap - a);
        if (a) memcpy(p, s.p, a);
        if (t.n - b) memcpy(p + a, t.p + b, t.n - b);
        n = a + (t.n - b);
        break;
    }
    default: /* point edits */
        if (s.n) memcpy(p, s.p, s.n);
        n = s.n;
        for (int k = 1 + (int)(rnd() % 8); k > 0; k--) {
            size_t at = n ? rnd() % n : 0;
            switch (rnd() % 3) {
            case 0:
                if (n) p[at] = (unsigned char)rnd();
                break;
            case 1:
                if (n < cap) {
                    memmove(p + at + 1, p + at, n - at);
                    p[at] = (unsigned char)rnd();
                    n++;
                }
                break;
            default:
                if (n) {
                    memmove(p + at, p + at + 1, n - at - 1);
                    n--;
                }
            }
        }
    }
    return (blob){p, n};
}

int main(int argc, char **argv) {
    long random_inputs = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--random") && i + 1 < argc) random_inputs = atol(argv[++i]);
        else add_path(argv[i]);
    }
    int rc = rosa_fuzz_init();
    if (rc) return rc;
    for (size_t i = 0; i < nseeds; i++) LLVMFuzzerTestOneInput(seeds[i].p, seeds[i].n);
    for (long i = 0; i < random_inputs; i++) {
        blob b = mutate();
        LLVMFuzzerTestOneInput(b.p, b.n);
        free(b.p);
    }
    printf("replayed %zu seed inputs and %ld mutated ones: no failure\n", nseeds, random_inputs);
    for (size_t i = 0; i < nseeds; i++) free(seeds[i].p);
    free(seeds);
    return 0;
}
