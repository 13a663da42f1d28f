/* bench_rosa.c: `rosa-cli bench rosa`: time the per-route ROSA state (engine/rosa/rosa_sam.c).
 *
 * Generates seeded symbol streams, runs R independent routes over T tokens each (routes split
 * over N pthreads), and prints one machine-readable line per mode and symbol distribution
 * (random first, then low-entropy; more with --dist):
 *   bench rosa dist=random routes=64 tokens=100000 bits=4 threads=1 ns_per_route_token=41.2
 *   bytes_per_krun=40.0 runs=... bytes=... seconds=... cpu_ns_per_route_token=... mode=route
 * Two modes, by default route first (the automaton's cost per step on one stream, comparable
 * with the seed's per-route measurement), then grouped (what decode costs with every route
 * live, dominated by memory latency once the routes outgrow the caches):
 * - grouped: the way the engine decodes: one token at a time (--chunk C: C at a time), every
 *   route of the thread, in groups of G (--group, default ROSA__ROUTE_GROUP as in the engine)
 *   through rosa__routes_run; inputs laid out [token][route] as the engine's;
 * - route: each route runs all its tokens in one rosa__route_run call, then the next route
 *   (inputs contiguous per route); the working set is one route.
 * ns_per_route_token = wall time / (routes * tokens), including route setup and teardown
 * (cpu_ns_per_route_token: the same from thread CPU time, steadier on a loaded machine);
 * bytes_per_krun = heap bytes allocated (capacities) / k-runs, measured before each route is
 * freed.  Inputs are generated before the clock starts.  In grouped mode each thread's routes
 * are stored as a session's (rosa_routes.h: the large arrays in an arena on huge pages, whose
 * slack counts in bytes_per_krun; --no-huge: all on the C heap); route mode uses the heap.
 * --horizon H: every route keeps the undo log of its last H steps (rosa__route_set_horizon, what
 * a session with rollback_tokens H does); its bytes count in bytes_per_krun, and the line adds
 * horizon=H undo_bytes=... (the logs' part of bytes). */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "rosa.h"
#include "rosa/rosa_routes.h"
#include "rosa/rosa_sam.h"

enum { DIST_RANDOM, DIST_LOW, DIST_REPEAT, NDIST };
static const char *dist_names[NDIST] = {"random", "low", "repeat"};
enum { MODE_GROUPED, MODE_ROUTE, NMODE };
static const char *mode_names[NMODE] = {"grouped", "route"};

typedef struct {
    int routes, tokens, bits, threads, dest, group, chunk, huge;
    uint32_t horizon; /* --horizon H: rollback horizon of every route (0: none) */
    uint64_t seed;
    int dists[NDIST], ndists;
    int modes[NMODE], nmodes;
} bench_opts;

typedef struct {
    const bench_opts *o;
    int mode;
    const uint8_t *in; /* route mode: [routes][3][tokens] (q, k, v); grouped: [3][tokens][routes] */
    int r0, r1;        /* routes [r0, r1) */
    int err;
    int64_t runs;
    size_t bytes, undo; /* undo: the undo logs' part of bytes */
    double cpu; /* thread CPU seconds (less sensitive than wall time to other load) */
} worker;

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* One stream of T symbols over K: uniform; low-entropy (the route's 3 symbols a[] at 70/20/10,
 * or 2 at 80/20 when K = 2); or a short pattern repeated with 1% mutations. */
static void gen(uint64_t *g, int dist, int K, int T, const uint8_t *a, uint8_t *out) {
    if (dist == DIST_RANDOM) {
        for (int t = 0; t < T; t++) out[t] = (uint8_t)(splitmix(g) % (unsigned)K);
    } else if (dist == DIST_LOW) {
        for (int t = 0; t < T; t++) {
            unsigned x = (unsigned)(splitmix(g) % 100);
            out[t] = K == 2 ? a[x < 80 ? 0 : 1] : a[x < 70 ? 0 : x < 90 ? 1 : 2];
        }
    } else {
        uint8_t pat[8];
        for (int i = 0; i < 8; i++) pat[i] = (uint8_t)(splitmix(g) % (unsigned)K);
        for (int t = 0; t < T; t++) {
            uint64_t x = splitmix(g);
            out[t] = x % 100 == 0 ? (uint8_t)((x >> 8) % (unsigned)K) : pat[t % 8];
        }
    }
}

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Grouped mode: chunk by chunk (--chunk tokens, default 1 as in decode) over all the worker's
 * routes, G at a time. */
static void work_grouped(worker *w) {
    const bench_opts *o = w->o;
    size_t T = (size_t)o->tokens, R = (size_t)o->routes, n = (size_t)(w->r1 - w->r0);
    rosa__routes rs = {0}; /* the worker's routes stored as a session's (an arena unless --no-huge) */
    rosa__route **ptr = malloc(n * sizeof *ptr);
    size_t C = (size_t)o->chunk;
    int16_t *vout = malloc(C * R * sizeof *vout);
    int32_t *dest = o->dest ? malloc(C * R * sizeof *dest) : NULL;
    if (!ptr || !vout || (o->dest && !dest) || rosa__routes_new(&rs, n, o->huge)) {
        w->err = ROSA_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) ptr[i] = &rs.r[i];
    rosa__routes_set_horizon(&rs, o->horizon);
    const uint8_t *qs = w->in, *ks = qs + T * R, *vs = ks + T * R;
    for (size_t t = 0; t < T && !w->err; t += C)
        for (size_t i = 0; i < n; i += (size_t)o->group) {
            int g = n - i < (size_t)o->group ? (int)(n - i) : o->group;
            size_t at = t * R + (size_t)w->r0 + i;
            int len = T - t < C ? (int)(T - t) : (int)C;
            int err = rosa__routes_run(ptr + i, g, len, qs + at, ks + at, vs + at, R, 1,
                                       vout + w->r0 + i, dest ? dest + w->r0 + i : NULL);
            if (err) {
                w->err = err;
                break;
            }
        }
    w->runs += rosa__routes_nruns(&rs);
    w->bytes += rosa__routes_bytes(&rs);
    w->undo += rosa__routes_undo_bytes(&rs);
out:
    rosa__routes_free(&rs);
    free(ptr);
    free(vout);
    free(dest);
}

static void *work(void *arg) {
    worker *w = arg;
    const bench_opts *o = w->o;
    size_t T = (size_t)o->tokens;
    if (w->mode == MODE_GROUPED) {
        double c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
        work_grouped(w);
        w->cpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
        return NULL;
    }
    int16_t *vout = malloc(T * sizeof *vout);
    int32_t *dest = o->dest ? malloc(T * sizeof *dest) : NULL;
    double c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    if (!vout || (o->dest && !dest)) {
        w->err = ROSA_ERR_NOMEM;
        goto out;
    }
    for (int r = w->r0; r < w->r1; r++) {
        const uint8_t *q = w->in + (size_t)r * 3 * T;
        rosa__route rt;
        rosa__route_init(&rt);
        rosa__route_set_horizon(&rt, o->horizon);
        int err = rosa__route_run(&rt, o->tokens, q, q + T, q + 2 * T, 1, vout, dest);
        w->runs += rosa__route_nruns(&rt);
        w->bytes += rosa__route_bytes(&rt);
        w->undo += rosa__route_undo_bytes(&rt);
        rosa__route_free(&rt);
        if (err) {
            w->err = err;
            break;
        }
    }
out:
    w->cpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
    free(vout);
    free(dest);
    return NULL;
}

static int run_dist(const bench_opts *o, int mode, int dist) {
    size_t T = (size_t)o->tokens, R = (size_t)o->routes;
    int K = 1 << o->bits;
    uint8_t *in = malloc(R * 3 * T);
    uint8_t *tin = mode == MODE_GROUPED ? malloc(R * 3 * T) : NULL;
    worker *ws = calloc((size_t)o->threads, sizeof *ws);
    pthread_t *th = calloc((size_t)o->threads, sizeof *th);
    if (!in || !ws || !th || (mode == MODE_GROUPED && !tin)) {
        fprintf(stderr, "rosa-cli bench rosa: out of memory for %zu x %zu inputs\n", R, T);
        free(in);
        free(tin);
        free(ws);
        free(th);
        return 1;
    }
    for (size_t r = 0; r < R; r++) {
        uint64_t g = o->seed * 0x100000001B3ull + (uint64_t)dist * 7919 + r;
        uint8_t *q = in + r * 3 * T, a[3] = {0, 1, 0};
        /* q, k and v of a low-entropy route share its 3 distinct symbols */
        if (K > 2)
            do {
                for (int i = 0; i < 3; i++) a[i] = (uint8_t)(splitmix(&g) % (unsigned)K);
            } while (a[1] == a[0] || a[2] == a[0] || a[2] == a[1]);
        for (int i = 0; i < 3; i++) gen(&g, dist, K, o->tokens, a, q + (size_t)i * T);
    }
    if (tin) { /* the engine's layout: [q, k, v][token][route] */
        for (size_t r = 0; r < R; r++)
            for (size_t i = 0; i < 3; i++)
                for (size_t t = 0; t < T; t++) tin[(i * T + t) * R + r] = in[(r * 3 + i) * T + t];
        free(in);
        in = tin;
    }
    int started = 0, rc = 0;
    double t0 = clock_s(CLOCK_MONOTONIC);
    for (int i = 0; i < o->threads; i++) {
        ws[i] = (worker){.o = o, .mode = mode, .in = in, .r0 = (int)(R * (size_t)i / (size_t)o->threads),
                         .r1 = (int)(R * (size_t)(i + 1) / (size_t)o->threads)};
        if (o->threads == 1) {
            work(&ws[i]);
        } else if (pthread_create(&th[i], NULL, work, &ws[i]) != 0) {
            fprintf(stderr, "rosa-cli bench rosa: cannot start thread %d\n", i);
            ws[i].err = ROSA_ERR_NOMEM;
            break;
        }
        started++;
    }
    if (o->threads > 1)
        for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    double secs = clock_s(CLOCK_MONOTONIC) - t0, cpu = 0;
    int64_t runs = 0;
    size_t bytes = 0, undo = 0;
    for (int i = 0; i < o->threads; i++) {
        runs += ws[i].runs;
        bytes += ws[i].bytes;
        undo += ws[i].undo;
        cpu += ws[i].cpu;
        if (ws[i].err && !rc) {
            fprintf(stderr, "rosa-cli bench rosa: route failed: %s\n", rosa_strerror(ws[i].err));
            rc = 1;
        }
    }
    if (!rc)
        printf("bench rosa dist=%s routes=%d tokens=%d bits=%d threads=%d ns_per_route_token=%.1f "
               "bytes_per_krun=%.1f runs=%lld bytes=%zu seconds=%.3f cpu_ns_per_route_token=%.1f "
               "mode=%s",
               dist_names[dist], o->routes, o->tokens, o->bits, o->threads,
               secs * 1e9 / ((double)R * (double)T), runs ? (double)bytes / (double)runs : 0.0,
               (long long)runs, bytes, secs, cpu * 1e9 / ((double)R * (double)T), mode_names[mode]);
    if (!rc && mode == MODE_GROUPED) printf(" group=%d chunk=%d", o->group, o->chunk);
    if (!rc && o->horizon) printf(" horizon=%u undo_bytes=%zu", o->horizon, undo);
    if (!rc) printf("\n");
    fflush(stdout);
    free(in);
    free(ws);
    free(th);
    return rc;
}

static void usage(FILE *f) {
    fprintf(f, "usage: rosa-cli bench rosa --routes R --tokens T [--bits M] [--threads N]\n"
               "                          [--seed S] [--dist random,low,repeat] [--dest]\n"
               "                          [--mode grouped,route] [--group G] [--chunk C] [--no-huge]\n"
               "                          [--horizon H]\n"
               "  M in 1..8 (default 4); N threads (default 1); --dest also asks for dest times;\n"
               "  grouped: token by token across routes, G routes per call (default %d, the\n"
               "  engine's most), C tokens per call (default 1, as in decode), the routes stored\n"
               "  as a session's (huge pages; --no-huge: the C heap); route: one route's tokens\n"
               "  in one call, route after route; default both, route first;\n"
               "  --horizon H: every route keeps an undo log of its last H steps (rollback)\n",
            ROSA__ROUTE_GROUP);
}

static int parse_int(const char *name, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "rosa-cli bench rosa: %s needs an integer in %ld..%ld, got '%s'\n", name, lo,
                hi, s ? s : "(nothing)");
        return -1;
    }
    *out = v;
    return 0;
}

/* A comma list of names[0..n) into out[] / *nout. */
static int parse_list(const char *opt, const char *s, const char *const *names, int n, int *out,
                      int *nout) {
    char buf[128];
    if (!s || strlen(s) >= sizeof buf) goto bad;
    strcpy(buf, s);
    *nout = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int d = 0;
        while (d < n && strcmp(tok, names[d])) d++;
        if (d == n || *nout == n) goto bad;
        out[(*nout)++] = d;
    }
    if (*nout) return 0;
bad:
    fprintf(stderr, "rosa-cli bench rosa: %s takes a comma list of", opt);
    for (int d = 0; d < n; d++) fprintf(stderr, "%s %s", d ? "," : "", names[d]);
    fprintf(stderr, "; got '%s'\n", s ? s : "(nothing)");
    return -1;
}

int cli_bench_rosa(int argc, char **argv) {
    bench_opts o = {.routes = -1, .tokens = -1, .bits = 4, .threads = 1, .seed = 1,
                    .dists = {DIST_RANDOM, DIST_LOW}, .ndists = 2, .group = ROSA__ROUTE_GROUP, .chunk = 1,
                    .modes = {MODE_ROUTE, MODE_GROUPED}, .nmodes = 2, .huge = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--dest")) {
            o.dest = 1;
            continue;
        } else if (!strcmp(a, "--no-huge")) {
            o.huge = 0;
            continue;
        } else if (!strcmp(a, "--routes")) {
            if (parse_int(a, v, 1, 1 << 20, &x)) return 2;
            o.routes = (int)x;
        } else if (!strcmp(a, "--tokens")) {
            if (parse_int(a, v, 1, (long)ROSA__MAX_RUNS, &x)) return 2;
            o.tokens = (int)x;
        } else if (!strcmp(a, "--bits")) {
            if (parse_int(a, v, 1, 8, &x)) return 2;
            o.bits = (int)x;
        } else if (!strcmp(a, "--threads")) {
            if (parse_int(a, v, 1, 1024, &x)) return 2;
            o.threads = (int)x;
        } else if (!strcmp(a, "--seed")) {
            if (parse_int(a, v, 0, LONG_MAX, &x)) return 2;
            o.seed = (uint64_t)x;
        } else if (!strcmp(a, "--dist")) {
            if (parse_list(a, v, dist_names, NDIST, o.dists, &o.ndists)) return 2;
        } else if (!strcmp(a, "--mode")) {
            if (parse_list(a, v, mode_names, NMODE, o.modes, &o.nmodes)) return 2;
        } else if (!strcmp(a, "--group")) {
            if (parse_int(a, v, 1, 1024, &x)) return 2;
            o.group = (int)x;
        } else if (!strcmp(a, "--chunk")) {
            if (parse_int(a, v, 1, 1 << 20, &x)) return 2;
            o.chunk = (int)x;
        } else if (!strcmp(a, "--horizon")) {
            if (parse_int(a, v, 0, (long)ROSA__MAX_HORIZON, &x)) return 2;
            o.horizon = (uint32_t)x;
        } else {
            fprintf(stderr, "rosa-cli bench rosa: unknown argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (o.routes < 0 || o.tokens < 0) {
        fprintf(stderr, "rosa-cli bench rosa: --routes and --tokens are required\n");
        usage(stderr);
        return 2;
    }
    if ((double)o.routes * o.tokens * 3 > 64e9) {
        fprintf(stderr, "rosa-cli bench rosa: routes x tokens too large for the input buffers\n");
        return 2;
    }
    if (o.threads > o.routes) o.threads = o.routes;
    for (int m = 0; m < o.nmodes; m++)
        for (int i = 0; i < o.ndists; i++)
            if (run_dist(&o, o.modes[m], o.dists[i])) return 1;
    return 0;
}
