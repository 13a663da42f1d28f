/* bench_rosa_step.c: `rosa-cli bench rosa-step`: the CPU side of a decode step at model scale.
 *
 * Builds the ROSA state of --batch sessions of a model shape (--shape 0.6b: 27 ROSA layers x
 * 256 routes; 1.7b: 27 x 512; or --layers L --routes R) with the engine's own calls
 * (rosa__routes_new, the session's storage; rosa__rosa_step, what every backend calls per ROSA
 * layer, on the engine's thread pool), feeds each session --context tokens of symbols in
 * prefill-sized chunks before the clock starts, then times --tokens decode steps: per step,
 * every ROSA layer in turn advances every session by one token, as a backend does.  One line:
 *   bench rosa-step shape=0.6b layers=27 routes=256 batch=1 context=32768 tokens=256 dist=random
 *   ns_per_route_token=... ms_per_token=... ms_per_step=... bytes_per_session=...
 *   bytes_per_krun=... threads=2 cpu_ns_per_route_token=... fork_join_us=... build_seconds=...
 * With --repeat K the T steps are timed K times in a row (the sessions go on growing) and the
 * figures are medians over the rounds (best_ns_per_route_token: the fastest round).
 * ns_per_route_token: wall time / (steps x batch x layers x routes); ms_per_step: wall time of
 * one step of the whole batch (the latency each session sees per token); ms_per_token:
 * ms_per_step / batch (the cost of one generated token); cpu_: process CPU time instead of
 * wall time; bytes_per_session: the routes' heap bytes (as rosa_session_memory) averaged over
 * sessions; bytes_per_krun: those bytes over the k-runs; fork_join_us: one empty parallel
 * region of the pool (rosa__pool_run with one task per thread), the fixed cost paid per
 * layer per step.  Symbols are drawn from a seeded hash of (session, layer, route, time), so
 * prefill and decode continue one stream: uniform (random), or each route's 3 symbols at
 * 70/20/10 for q, k and v alike (low).
 * --save DIR: then session 0's routes are written to DIR with the code rosa_session_save uses
 * for its route section (session_file.c: buffered, checksummed, sequential), timed, fsync'd
 * (timed apart), read back into fresh routes as rosa_session_restore does, timed, compared
 * (k-runs, bytes) and deleted; a second line:
 *   bench session-file bytes=... save_seconds=... save_gb_per_s=... fsync_seconds=...
 *   restore_seconds=... restore_gb_per_s=... restore_cpu_seconds=... (the file read from the
 *   page cache, every route's structural check included) check_seconds=... check_gb_per_s=...
 *   check_cpu_seconds=... (that check alone, run again on the restored routes; cpu: process
 *   CPU time, which on a shared machine says more than wall time)
 * --horizon H: every route keeps the undo log of its last H steps (rosa__routes_set_horizon, as
 * a session with rollback_tokens H; the history builds it too, and bytes count it); the line
 * adds horizon=H undo_bytes_per_session=... and truncate_ms=...: session 0's routes truncated
 * by min(H, steps seen) steps (rosa__routes_truncate), once, after the timed steps. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_common.h"
#include "core/session_file.h"
#include "core/model.h"
#include "rosa.h"

enum { DIST_RANDOM, DIST_LOW };

typedef struct {
    const char *shape;
    int layers, routes, bits, batch, context, tokens, threads, chunk, dist, repeat, huge;
    uint32_t horizon; /* --horizon H: rollback horizon of every route (0: none) */
    uint64_t seed;
    const char *save_dir; /* --save DIR: time the route section of a session file */
} step_opts;

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The q (which 0), k (1) or v (2) symbol of (session, layer, route) at time t. */
static uint8_t sym_at(const step_opts *o, int s, int l, int r, int64_t t, int which) {
    uint64_t route = o->seed * 0x9E3779B97F4A7C15ull ^ ((uint64_t)s << 40 | (uint64_t)l << 24 | (uint64_t)r);
    unsigned K = 1u << o->bits;
    uint64_t x = mix64(mix64(route) + (uint64_t)t * 3 + (uint64_t)which);
    if (o->dist == DIST_RANDOM) return (uint8_t)(x % K);
    uint8_t a[3];
    uint64_t g = mix64(route ^ 0x5555);
    if (K == 2) {
        a[0] = 0;
        a[1] = 1;
        return a[x % 100 < 80 ? 0 : 1];
    }
    do {
        for (int i = 0; i < 3; i++) a[i] = (uint8_t)((g = mix64(g + 1)) % K);
    } while (a[1] == a[0] || a[2] == a[0] || a[2] == a[1]);
    unsigned p = (unsigned)(x % 100);
    return a[p < 70 ? 0 : p < 90 ? 1 : 2];
}

/* Symbols of tokens [t0, t0 + n) of every session for layer l, laid out as the backends pass
 * them: q, k, v each [batch * n rows, R] (session-major rows). */
static void fill(const step_opts *o, int l, int64_t t0, int n, uint8_t *qs, uint8_t *ks, uint8_t *vs) {
    size_t R = (size_t)o->routes;
    for (int s = 0; s < o->batch; s++)
        for (int i = 0; i < n; i++) {
            size_t row = (size_t)s * (size_t)n + (size_t)i;
            for (int r = 0; r < o->routes; r++) {
                qs[row * R + (size_t)r] = sym_at(o, s, l, r, t0 + i, 0);
                ks[row * R + (size_t)r] = sym_at(o, s, l, r, t0 + i, 1);
                vs[row * R + (size_t)r] = sym_at(o, s, l, r, t0 + i, 2);
            }
        }
}

static double now_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The median (or, best != 0, the minimum) of n values; sorts them. */
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n, int best) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return best ? v[0] : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void noop_task(void *ctx, int task, int thread) {
    (void)ctx;
    (void)task;
    (void)thread;
}

/* Mean seconds of one empty parallel region with one task per thread. */
static double fork_join_cost(rosa__pool *pool) {
    int n = rosa__pool_size(pool), reps = 20000;
    for (int i = 0; i < 1000; i++) rosa__pool_run(pool, n, noop_task, NULL);
    double t0 = now_s(CLOCK_MONOTONIC);
    for (int i = 0; i < reps; i++) rosa__pool_run(pool, n, noop_task, NULL);
    return (now_s(CLOCK_MONOTONIC) - t0) / reps;
}

/* --save DIR: write, fsync, read back and compare the route section of session 0. */
static int bench_save(const step_opts *o, const rosa__routes *rs, int64_t pos) {
    size_t plen = strlen(o->save_dir) + 32;
    char *path = malloc(plen);
    if (!path) return 1;
    snprintf(path, plen, "%s/bench-routes.rosa", o->save_dir);
    int rc = 1, err;
    rosa__sio io;
    rosa__routes back;
    memset(&back, 0, sizeof back);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "rosa-cli bench rosa-step: cannot create %s\n", path);
        free(path);
        return 1;
    }
    double t0 = now_s(CLOCK_MONOTONIC);
    err = rosa__sio_writer(&io, fd);
    if (!err) err = rosa__routes_write(&io, rs);
    if (!err) err = rosa__sio_finish(&io);
    double t1 = now_s(CLOCK_MONOTONIC);
    uint64_t bytes = io.done;
    rosa__sio_close(&io);
    if (fsync(fd) && !err) err = ROSA_ERR_IO;
    double t2 = now_s(CLOCK_MONOTONIC);
    close(fd);
    if (err) {
        fprintf(stderr, "rosa-cli bench rosa-step: writing %s: %s\n", path, rosa_strerror(err));
        goto done;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || rosa__routes_new(&back, rs->n, o->huge)) {
        fprintf(stderr, "rosa-cli bench rosa-step: cannot read %s back\n", path);
        if (fd >= 0) close(fd);
        goto done;
    }
    double t3 = now_s(CLOCK_MONOTONIC), c3 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    err = rosa__sio_reader(&io, fd, bytes);
    if (!err) err = rosa__routes_read(&io, &back, pos);
    if (!err) err = rosa__sio_check_end(&io);
    double t4 = now_s(CLOCK_MONOTONIC), c4 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    rosa__sio_close(&io);
    close(fd);
    /* the structural check restore runs on every route (included above), timed alone */
    double t5 = now_s(CLOCK_MONOTONIC), c5 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    for (size_t i = 0; i < back.n && !err; i++) err = rosa__route_check(&back.r[i]);
    double t6 = now_s(CLOCK_MONOTONIC), c6 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    if (err || rosa__routes_nruns(&back) != rosa__routes_nruns(rs)) {
        fprintf(stderr, "rosa-cli bench rosa-step: reading %s back: %s\n", path,
                err ? rosa_strerror(err) : "k-runs differ");
        goto done;
    }
    printf("bench session-file bytes=%llu routes=%zu save_seconds=%.3f save_gb_per_s=%.2f "
           "fsync_seconds=%.3f restore_seconds=%.3f restore_gb_per_s=%.2f restore_cpu_seconds=%.3f "
           "check_seconds=%.3f check_gb_per_s=%.2f check_cpu_seconds=%.3f\n",
           (unsigned long long)bytes, rs->n, t1 - t0, (double)bytes / (t1 - t0) / 1e9, t2 - t1, t4 - t3,
           (double)bytes / (t4 - t3) / 1e9, c4 - c3, t6 - t5, (double)bytes / (t6 - t5) / 1e9, c6 - c5);
    fflush(stdout);
    rc = 0;
done:
    rosa__routes_free(&back);
    unlink(path);
    free(path);
    return rc;
}

static int run(const step_opts *o) {
    size_t B = (size_t)o->batch, R = (size_t)o->routes, L = (size_t)o->layers;
    int C = o->chunk < o->context ? o->chunk : o->context, rc = 1;
    if (C < 1) C = 1;
    rosa_model m;
    memset(&m, 0, sizeof m);
    m.R = o->routes;
    m.M = o->bits;
    m.n_rosa = o->layers;
    m.pool = rosa__pool_new(o->threads);
    struct rosa_session *sess = calloc(B, sizeof *sess);
    struct rosa_session **ss = calloc(B, sizeof *ss);
    int *ntok = malloc(B * sizeof *ntok);
    size_t rows = B * (size_t)C;
    uint8_t *sym = malloc(rows * R * 3);
    int16_t *vout = malloc(rows * R * sizeof *vout);
    /* decode inputs of every step and layer, generated before the clock starts */
    size_t step_bytes = B * R * 3;
    uint8_t *dec = malloc((size_t)o->tokens * L * step_bytes);
    if (!m.pool || !sess || !ss || !ntok || !sym || !vout || !dec) {
        fprintf(stderr, "rosa-cli bench rosa-step: out of memory\n");
        goto out;
    }
    for (size_t s = 0; s < B; s++) {
        sess[s].m = &m;
        ss[s] = &sess[s];
        if (rosa__routes_new(&sess[s].routes, L * R, o->huge)) {
            fprintf(stderr, "rosa-cli bench rosa-step: out of memory\n");
            goto out;
        }
        rosa__routes_set_horizon(&sess[s].routes, o->horizon);
    }
    /* the history: prefill-sized chunks through the same call (not timed) */
    double b0 = now_s(CLOCK_MONOTONIC);
    for (int t0 = 0; t0 < o->context; t0 += C) {
        int n = o->context - t0 < C ? o->context - t0 : C;
        for (size_t s = 0; s < B; s++) ntok[s] = n;
        for (size_t l = 0; l < L; l++) {
            uint8_t *qs = sym, *ks = sym + B * (size_t)n * R, *vs = ks + B * (size_t)n * R;
            fill(o, (int)l, t0, n, qs, ks, vs);
            int err = rosa__rosa_step(&m, ss, (int)B, ntok, (int)l, qs, ks, vs, vout, NULL);
            if (err) {
                fprintf(stderr, "rosa-cli bench rosa-step: building the history failed: %s\n",
                        rosa_strerror(err));
                goto out;
            }
        }
        for (size_t s = 0; s < B; s++) sess[s].pos += n;
    }
    double build = now_s(CLOCK_MONOTONIC) - b0;
    /* --repeat rounds of --tokens timed steps, the sessions going on from round to round;
     * inputs of a round are generated before its clock starts */
    double *wall = calloc((size_t)o->repeat, sizeof *wall), *cpu = calloc((size_t)o->repeat, sizeof *cpu);
    if (!wall || !cpu) {
        free(wall);
        free(cpu);
        fprintf(stderr, "rosa-cli bench rosa-step: out of memory\n");
        goto out;
    }
    for (size_t s = 0; s < B; s++) ntok[s] = 1;
    for (int k = 0; k < o->repeat; k++) {
        int64_t pos = sess[0].pos;
        for (int i = 0; i < o->tokens; i++)
            for (size_t l = 0; l < L; l++) {
                uint8_t *d = dec + ((size_t)i * L + l) * step_bytes;
                fill(o, (int)l, pos + i, 1, d, d + B * R, d + 2 * B * R);
            }
        double c0 = now_s(CLOCK_PROCESS_CPUTIME_ID), t0 = now_s(CLOCK_MONOTONIC);
        for (int i = 0; i < o->tokens; i++) {
            for (size_t l = 0; l < L; l++) {
                const uint8_t *d = dec + ((size_t)i * L + l) * step_bytes;
                int err = rosa__rosa_step(&m, ss, (int)B, ntok, (int)l, d, d + B * R, d + 2 * B * R, vout, NULL);
                if (err) {
                    fprintf(stderr, "rosa-cli bench rosa-step: step failed: %s\n", rosa_strerror(err));
                    free(wall);
                    free(cpu);
                    goto out;
                }
            }
            for (size_t s = 0; s < B; s++) sess[s].pos++;
        }
        wall[k] = now_s(CLOCK_MONOTONIC) - t0;
        cpu[k] = now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    }
    double best = median(wall, o->repeat, 1), wmed = median(wall, o->repeat, 0);
    double cmed = median(cpu, o->repeat, 0);
    free(wall);
    free(cpu);
    double fj = fork_join_cost(m.pool);
    size_t bytes = 0, undo = 0;
    int64_t runs = 0;
    for (size_t s = 0; s < B; s++) {
        bytes += rosa__routes_bytes(&sess[s].routes);
        undo += rosa__routes_undo_bytes(&sess[s].routes);
        runs += rosa__routes_nruns(&sess[s].routes);
    }
    double rt = (double)o->tokens * (double)B * (double)L * (double)R;
    printf("bench rosa-step shape=%s layers=%d routes=%d batch=%d context=%d tokens=%d dist=%s "
           "ns_per_route_token=%.1f ms_per_token=%.3f ms_per_step=%.3f bytes_per_session=%zu "
           "bytes_per_krun=%.1f threads=%d cpu_ns_per_route_token=%.1f fork_join_us=%.2f "
           "best_ns_per_route_token=%.1f repeat=%d huge=%d build_seconds=%.1f\n",
           o->shape, o->layers, o->routes, o->batch, o->context, o->tokens,
           o->dist == DIST_RANDOM ? "random" : "low", wmed * 1e9 / rt,
           wmed * 1e3 / o->tokens / (double)B, wmed * 1e3 / o->tokens, bytes / B,
           runs ? (double)bytes / (double)runs : 0.0, rosa__pool_size(m.pool), cmed * 1e9 / rt,
           fj * 1e6, best * 1e9 / rt, o->repeat, o->huge, build);
    if (o->horizon) {
        int64_t back = sess[0].pos < (int64_t)o->horizon ? sess[0].pos : (int64_t)o->horizon;
        double tt = now_s(CLOCK_MONOTONIC);
        int err = rosa__routes_truncate(&sess[0].routes, sess[0].pos - back);
        tt = now_s(CLOCK_MONOTONIC) - tt;
        if (err) {
            fprintf(stderr, "rosa-cli bench rosa-step: truncate failed: %s\n", rosa_strerror(err));
            goto out;
        }
        sess[0].pos -= back;
        printf("bench rosa-step horizon=%u undo_bytes_per_session=%zu truncate_steps=%lld "
               "truncate_ms=%.3f\n",
               o->horizon, undo / B, (long long)back, tt * 1e3);
    }
    fflush(stdout);
    rc = o->save_dir ? bench_save(o, &sess[0].routes, sess[0].pos) : 0;
out:
    if (sess)
        for (size_t s = 0; s < B; s++) rosa__routes_free(&sess[s].routes);
    rosa__pool_free(m.pool);
    free(sess);
    free(ss);
    free(ntok);
    free(sym);
    free(vout);
    free(dec);
    return rc;
}

static void usage(FILE *f) {
    fprintf(f, "usage: rosa-cli bench rosa-step [--shape 0.6b|1.7b | --layers L --routes R]\n"
               "                               [--batch B] [--context N] [--tokens T] [--threads N]\n"
               "                               [--dist random|low] [--bits M] [--chunk C] [--seed S]\n"
               "                               [--repeat K] [--no-huge] [--save DIR] [--horizon H]\n"
               "  the per-token ROSA work of a decode step (rosa__rosa_step for every ROSA layer)\n"
               "  over B sessions whose histories (N tokens, default 4096, built first in chunks\n"
               "  of C, default 512) are not timed; T timed steps (default 256); N threads\n"
               "  (default 1); shape 0.6b = 27 layers x 256 routes (default), 1.7b = 27 x 512;\n"
               "  K rounds of T steps (default 1): medians printed, and the best round's time;\n"
               "  --no-huge: the routes' arrays on the C heap instead of the session's arena;\n"
               "  --save DIR: also time writing session 0's routes as a session file's route\n"
               "  section to DIR (then fsync), and reading them back;\n"
               "  --horizon H: routes keep an undo log of their last H steps (rollback); a second\n"
               "  line gives its bytes and the time to truncate session 0 by H steps\n");
}

int cli_bench_rosa_step(int argc, char **argv) {
    step_opts o = {.shape = "0.6b", .layers = 27, .routes = 256, .bits = 4, .batch = 1, .context = 4096,
                   .tokens = 256, .threads = 1, .chunk = 512, .dist = DIST_RANDOM, .seed = 1,
                   .repeat = 1, .huge = 1};
    int custom = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--no-huge")) {
            o.huge = 0;
            continue;
        } else if (!strcmp(a, "--shape")) {
            if (v && !strcmp(v, "0.6b")) {
                o.layers = 27;
                o.routes = 256;
            } else if (v && !strcmp(v, "1.7b")) {
                o.layers = 27;
                o.routes = 512;
            } else {
                fprintf(stderr, "rosa-cli bench rosa-step: --shape takes 0.6b or 1.7b, got '%s'\n",
                        v ? v : "(nothing)");
                return 2;
            }
            o.shape = v;
        } else if (!strcmp(a, "--layers")) {
            if ((x = cli_parse_long(v, 1, 1024, a)) < 0) return 2;
            o.layers = (int)x;
            custom = 1;
        } else if (!strcmp(a, "--routes")) {
            if ((x = cli_parse_long(v, 1, 1 << 16, a)) < 0) return 2;
            o.routes = (int)x;
            custom = 1;
        } else if (!strcmp(a, "--batch")) {
            if ((x = cli_parse_long(v, 1, 4096, a)) < 0) return 2;
            o.batch = (int)x;
        } else if (!strcmp(a, "--context")) {
            if ((x = cli_parse_long(v, 0, 1 << 24, a)) < 0) return 2;
            o.context = (int)x;
        } else if (!strcmp(a, "--tokens")) {
            if ((x = cli_parse_long(v, 1, 1 << 20, a)) < 0) return 2;
            o.tokens = (int)x;
        } else if (!strcmp(a, "--threads")) {
            if ((x = cli_parse_long(v, 1, 1024, a)) < 0) return 2;
            o.threads = (int)x;
        } else if (!strcmp(a, "--chunk")) {
            if ((x = cli_parse_long(v, 1, 1 << 16, a)) < 0) return 2;
            o.chunk = (int)x;
        } else if (!strcmp(a, "--save")) {
            if (!v) {
                fprintf(stderr, "rosa-cli bench rosa-step: --save needs a directory\n");
                return 2;
            }
            o.save_dir = v;
        } else if (!strcmp(a, "--horizon")) {
            if ((x = cli_parse_long(v, 0, (long)ROSA__MAX_HORIZON, a)) < 0) return 2;
            o.horizon = (uint32_t)x;
        } else if (!strcmp(a, "--repeat")) {
            if ((x = cli_parse_long(v, 1, 1000, a)) < 0) return 2;
            o.repeat = (int)x;
        } else if (!strcmp(a, "--bits")) {
            if ((x = cli_parse_long(v, 1, 8, a)) < 0) return 2;
            o.bits = (int)x;
        } else if (!strcmp(a, "--seed")) {
            if ((x = cli_parse_long(v, 0, LONG_MAX, a)) < 0) return 2;
            o.seed = (uint64_t)x;
        } else if (!strcmp(a, "--dist")) {
            if (v && !strcmp(v, "random"))
                o.dist = DIST_RANDOM;
            else if (v && !strcmp(v, "low"))
                o.dist = DIST_LOW;
            else {
                fprintf(stderr, "rosa-cli bench rosa-step: --dist takes random or low, got '%s'\n",
                        v ? v : "(nothing)");
                return 2;
            }
        } else {
            fprintf(stderr, "rosa-cli bench rosa-step: unknown argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (custom) o.shape = "custom";
    if ((double)o.tokens * o.layers * o.batch * o.routes * 3 > 8e9 ||
        (double)o.batch * o.chunk * o.routes * 3 > 8e9) {
        fprintf(stderr, "rosa-cli bench rosa-step: tokens x layers x batch x routes too large for "
                        "the input buffers\n");
        return 2;
    }
    return run(&o);
}
