/* bench_decode.c: `rosa-cli bench decode|prefill`: decode tokens/s (batch 1 or --batch B) or
 * prefill tokens/s of a randomly initialised Qwen3-0.6B- or 1.7B-shaped bf16 model, with and
 * without a ROSA adapter, on the CPU or --device cuda, against the memory-bandwidth roofline
 * (weight bytes read per token / measured read bandwidth: host memory for the CPU, device
 * copy bandwidth for CUDA), plus KV memory per session against full attention.
 *
 * The random checkpoint is written once as real safetensors files (config.json,
 * model.safetensors, rosa_adapter.safetensors) into a cache directory and loaded through the
 * normal loader, so the benchmark exercises the same path as a real model. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_common.h"
#include "core/model.h"

typedef struct shape {
    int V, C, L, Hq, Hkv, D, F;
} shape;

static const shape QWEN3_06B = {151936, 1024, 28, 16, 8, 128, 3072};
static const shape QWEN3_17B = {151936, 2048, 28, 16, 8, 128, 6144};

typedef struct bench_opts {
    int prefill;            /* 0: decode, 1: prefill */
    int threads, prompt, ntok, batch, window;
    const char *device, *precision;
    size_t gpu_memory;
    double bw;              /* bytes/s */
    int rollback;           /* --rollback-tokens (-1: the engine's default) */
} bench_opts;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds of the whole process (all threads): on a loaded machine a 1-thread step's CPU
 * time moves much less than its wall time */
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- random checkpoint writer ---- */

typedef struct tinfo {
    char name[96];
    int64_t rows, cols; /* cols = 0 for vectors */
    int kind;           /* 0 matrix, 1 norm (ones-ish), 2 small vector */
} tinfo;

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static inline uint32_t rnd32(void) {
    rng_state ^= rng_state >> 12; rng_state ^= rng_state << 25; rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}

static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

static int write_tensors(const char *path, const tinfo *ts, int n) {
    /* header */
    size_t cap = 1 << 20, len = 0;
    char *h = malloc(cap);
    len += (size_t)snprintf(h + len, cap - len, "{");
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        uint64_t numel = (uint64_t)ts[i].rows * (ts[i].cols ? ts[i].cols : 1);
        if (ts[i].cols)
            len += (size_t)snprintf(h + len, cap - len, "%s\"%s\":{\"dtype\":\"BF16\",\"shape\":[%lld,%lld],\"data_offsets\":[%llu,%llu]}",
                                    i ? "," : "", ts[i].name, (long long)ts[i].rows, (long long)ts[i].cols,
                                    (unsigned long long)off, (unsigned long long)(off + numel * 2));
        else
            len += (size_t)snprintf(h + len, cap - len, "%s\"%s\":{\"dtype\":\"BF16\",\"shape\":[%lld],\"data_offsets\":[%llu,%llu]}",
                                    i ? "," : "", ts[i].name, (long long)ts[i].rows,
                                    (unsigned long long)off, (unsigned long long)(off + numel * 2));
        off += numel * 2;
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    while (len % 8) h[len++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) { free(h); return -1; }
    uint64_t hl = len;
    fwrite(&hl, 8, 1, f);
    fwrite(h, 1, len, f);
    free(h);
    uint16_t *buf = malloc(1 << 22);
    for (int i = 0; i < n; i++) {
        uint64_t numel = (uint64_t)ts[i].rows * (ts[i].cols ? ts[i].cols : 1);
        float scale = ts[i].cols ? 1.0f / sqrtf((float)ts[i].cols) : 0.1f;
        while (numel) {
            size_t k = numel < (1 << 21) ? numel : (1 << 21);
            for (size_t j = 0; j < k; j++) {
                float u = ((int32_t)rnd32()) * (1.0f / 2147483648.0f); /* uniform [-1, 1) */
                float v = ts[i].kind == 1 ? 1.0f + 0.1f * u : u * scale * 1.7f;
                buf[j] = to_bf16(v);
            }
            fwrite(buf, 2, k, f);
            numel -= k;
        }
    }
    free(buf);
    return fclose(f);
}

static int make_random_model(const char *dir, const shape *s) {
    char p[4096];
    snprintf(p, sizeof p, "%s/rosa_adapter.safetensors", dir);
    struct stat st;
    if (stat(p, &st) == 0) return 0; /* already there */
    mkdir(dir, 0755);
    fprintf(stderr, "bench decode: writing a random %d-layer checkpoint to %s ...\n", s->L, dir);
    snprintf(p, sizeof p, "%s/config.json", dir);
    FILE *f = fopen(p, "w");
    if (!f) return -1;
    fprintf(f, "{\"architectures\":[\"Qwen3ForCausalLM\"],\"model_type\":\"qwen3\",\"vocab_size\":%d,\"hidden_size\":%d,"
               "\"intermediate_size\":%d,\"num_hidden_layers\":%d,\"num_attention_heads\":%d,\"num_key_value_heads\":%d,"
               "\"head_dim\":%d,\"hidden_act\":\"silu\",\"rms_norm_eps\":1e-06,\"rope_theta\":1000000.0,"
               "\"tie_word_embeddings\":true,\"max_position_embeddings\":40960,\"torch_dtype\":\"bfloat16\"}\n",
            s->V, s->C, s->F, s->L, s->Hq, s->Hkv, s->D);
    fclose(f);
    int n = 0, cap = 16 + s->L * 16;
    tinfo *ts = calloc((size_t)cap, sizeof *ts);
#define ADD(nm, r, c, k) do { snprintf(ts[n].name, sizeof ts[n].name, "%s", nm); ts[n].rows = r; ts[n].cols = c; ts[n].kind = k; n++; } while (0)
    char nm[96];
    ADD("model.embed_tokens.weight", s->V, s->C, 0);
    ADD("model.norm.weight", s->C, 0, 1);
    for (int l = 0; l < s->L; l++) {
        const char *mats[] = {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight",
                              "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"};
        int64_t rows[] = {s->Hq * s->D, s->Hkv * s->D, s->Hkv * s->D, s->C, s->F, s->F, s->C};
        int64_t cols[] = {s->C, s->C, s->C, s->Hq * s->D, s->C, s->C, s->F};
        for (int k = 0; k < 7; k++) { snprintf(nm, sizeof nm, "model.layers.%d.%s", l, mats[k]); ADD(nm, rows[k], cols[k], 0); }
        const char *norms[] = {"input_layernorm.weight", "post_attention_layernorm.weight", "self_attn.q_norm.weight", "self_attn.k_norm.weight"};
        int64_t nlen[] = {s->C, s->C, s->D, s->D};
        for (int k = 0; k < 4; k++) { snprintf(nm, sizeof nm, "model.layers.%d.%s", l, norms[k]); ADD(nm, nlen[k], 0, 1); }
    }
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    int rc = write_tensors(p, ts, n);
    n = 0;
    for (int l = 1; l < s->L; l++) {
        const char *mats[] = {"rosa_q_proj.weight", "rosa_k_proj.weight", "rosa_v_proj.weight", "rosa_out.weight"};
        for (int k = 0; k < 4; k++) { snprintf(nm, sizeof nm, "model.layers.%d.%s", l, mats[k]); ADD(nm, s->C, s->C, 0); }
        const char *vecs[] = {"rosa_e0", "rosa_e1", "rosa_alpha"};
        for (int k = 0; k < 3; k++) { snprintf(nm, sizeof nm, "model.layers.%d.%s", l, vecs[k]); ADD(nm, s->C, 0, 2); }
    }
#undef ADD
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/rosa_adapter.safetensors.tmp", dir);
    snprintf(p, sizeof p, "%s/rosa_adapter.safetensors", dir);
    if (!rc) rc = write_tensors(tmp, ts, n);
    if (!rc) rc = rename(tmp, p);
    free(ts);
    return rc;
}

/* ---- read bandwidth ---- */

typedef struct { const uint64_t *p; size_t n; uint64_t sum; } bw_arg;

/* integer sum: vectorises fully, so the loop is limited by memory, not by adds */
static void *bw_thread(void *a) {
    bw_arg *b = a;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= b->n; i += 4) { s0 += b->p[i]; s1 += b->p[i + 1]; s2 += b->p[i + 2]; s3 += b->p[i + 3]; }
    for (; i < b->n; i++) s0 += b->p[i];
    b->sum = s0 + s1 + s2 + s3;
    return NULL;
}

/* Best of several passes over a 1 GiB buffer with nthreads readers, in bytes/s. */
static double measure_read_bw(int nthreads) {
    size_t bytes = (size_t)1 << 30, n = bytes / sizeof(uint64_t);
    uint64_t *buf = malloc(bytes);
    if (!buf) return 0;
    for (size_t i = 0; i < n; i++) buf[i] = i;
    double best = 0;
    for (int rep = 0; rep < 8; rep++) {
        pthread_t th[256];
        bw_arg args[256];
        double t0 = now_s();
        for (int t = 0; t < nthreads; t++) {
            args[t].p = buf + n / nthreads * t;
            args[t].n = n / nthreads;
            pthread_create(&th[t], NULL, bw_thread, &args[t]);
        }
        uint64_t s = 0;
        for (int t = 0; t < nthreads; t++) { pthread_join(th[t], NULL); s += args[t].sum; }
        double dt = now_s() - t0;
        if (s == 1) fprintf(stderr, "%llu", (unsigned long long)s); /* keep the sum alive */
        if (bytes / dt > best) best = bytes / dt;
    }
    free(buf);
    return best;
}

static double max_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

/* Bytes of weights read per decoded token: every matrix once (the embedding gather is one row). */
static double bytes_per_token(const rosa_model_info *in) {
    double C = in->hidden, D = in->head_dim, F = in->ffn;
    double layer = (in->heads * D * C) * 2 + (in->kv_heads * D * C) * 2 + 3 * C * F;
    double b = in->layers * layer + (double)in->vocab * C;
    b += in->n_rosa_layers * 4 * C * C;
    return b * 2; /* bf16 */
}

static void print_stats(rosa_model *m) {
    if (!m->backend->stats) return;
    char buf[512];
    m->backend->stats(m, buf, sizeof buf);
    printf("bench backend %s %s\n", m->backend->name, buf);
}

static int32_t argmax_row(const float *l, int V) {
    int32_t t = 0;
    for (int v = 1; v < V; v++) if (l[v] > l[t]) t = v;
    return t;
}

static int run_one(const char *dir, const char *adapter, const bench_opts *b, const char *label) {
    cli_model_args a = {0};
    rosa_load_opts_init(&a.opts);
    a.model = dir;
    a.opts.adapter = adapter;
    a.opts.threads = b->threads;
    a.opts.window = b->window;
    a.opts.global_layers = 1;
    a.opts.bits_per_route = 4;
    a.opts.device = b->device;
    a.opts.precision = b->precision;
    a.opts.gpu_memory = b->gpu_memory;
    a.opts.rollback_tokens = b->rollback;
    rosa_model *m = cli_load_model(&a);
    if (!m) return 1;
    const rosa_model_info *in = rosa_model_get_info(m);
    int B = b->batch, rc = 0;
    rosa_session **ss = calloc((size_t)B, sizeof *ss);
    int32_t *ids = malloc((size_t)b->prompt * sizeof *ids), *tok = malloc((size_t)B * sizeof *tok);
    float *lg = malloc((size_t)B * in->vocab * sizeof(float));
    for (int i = 0; i < b->prompt; i++) ids[i] = (int32_t)(rnd32() % (uint32_t)in->vocab);
    for (int i = 0; i < B && !rc; i++) rc = rosa_session_new(m, &ss[i]);
    double t0 = now_s();
    for (int i = 0; i < B && !rc; i++) rc = rosa_session_feed(ss[i], ids, b->prompt, NULL);
    double t_prefill = now_s() - t0;
    /* warm-up step, then timed greedy decode of all B sessions together */
    double dt = 0, c0 = 0, dcpu = 0;
    for (int k = 0; !b->prefill && !rc && k <= b->ntok; k++) {
        if (k == 1) { t0 = now_s(); c0 = cpu_s(); }
        for (int i = 0; i < B; i++) tok[i] = argmax_row(rosa_session_logits(ss[i]), in->vocab);
        rc = B == 1 ? rosa_session_feed(ss[0], tok, 1, NULL) : rosa_step_batch(ss, tok, B, lg);
    }
    if (!b->prefill) { dt = now_s() - t0; dcpu = cpu_s() - c0; }
    if (rc) {
        fprintf(stderr, "bench: %s\n", rosa_strerror(rc));
    } else {
        rosa_session_mem mem;
        rosa_session_memory(ss[0], &mem);
        int64_t T = rosa_session_length(ss[0]);
        /* bytes per cached element: f32 mode 4, bf16 mode 2 (CUDA, and the CPU since its
         * bf16 mode keeps a bf16 KV cache) */
        double elt = in->precision && !strcmp(in->precision, "f32") ? 4 : 2;
        double full_kv = (double)in->layers * 2 * T * in->kv_heads * in->head_dim * elt;
        if (b->prefill) {
            /* what the rollback horizon costs, and going back over all of it (where the backend can) */
            int back = in->rollback_tokens < T ? in->rollback_tokens : (int)T;
            double t_trunc = now_s();
            int trc = rosa_session_truncate(ss[0], T - back);
            t_trunc = now_s() - t_trunc;
            printf("bench prefill config=%s device=%s precision=%s layers=%d hidden=%d rosa_layers=%d window=%d prompt=%d "
                   "sessions=%d tokens_per_s=%.1f seconds=%.3f kv_bytes_per_session=%zu full_attention_kv_bytes=%.0f "
                   "rosa_bytes=%zu rollback_tokens=%d rollback_bytes=%zu truncate_tokens=%d truncate_ms=%.3f\n",
                   label, in->backend, in->precision, in->layers, in->hidden, in->n_rosa_layers, b->window, b->prompt, B,
                   (double)B * b->prompt / t_prefill, t_prefill, mem.kv_bytes, full_kv, mem.rosa_bytes, in->rollback_tokens,
                   mem.rollback_bytes, trc ? 0 : back, trc ? 0.0 : 1000 * t_trunc);
        } else {
            double tps = (double)b->ntok * B / dt, bpt = bytes_per_token(in), roof = b->bw / bpt;
            printf("bench decode config=%s device=%s precision=%s layers=%d hidden=%d rosa_layers=%d window=%d threads=%d "
                   "prompt=%d batch=%d tokens=%d tokens_per_s=%.3f ms_per_step=%.3f cpu_ms_per_step=%.3f weight_bytes_per_token=%.0f "
                   "read_bw_gbs=%.2f roofline_tokens_per_s=%.3f roofline_fraction=%.3f kv_bytes=%zu "
                   "full_attention_kv_bytes=%.0f rosa_bytes=%zu max_rss_mib=%.0f\n",
                   label, in->backend, in->precision, in->layers, in->hidden, in->n_rosa_layers, b->window, in->threads,
                   b->prompt, B, b->ntok, tps, 1000 * dt / b->ntok, 1000 * dcpu / b->ntok, bpt, b->bw / 1e9, roof, B == 1 ? tps / roof : tps / B / roof,
                   mem.kv_bytes, full_kv, mem.rosa_bytes, max_rss_mib());
        }
        print_stats(m);
        fflush(stdout);
    }
    for (int i = 0; i < B; i++) rosa_session_free(ss[i]);
    free(ss); free(ids); free(tok); free(lg);
    rosa_model_free(m);
    return rc ? 1 : 0;
}

int cli_bench_decode(int argc, char **argv) {
    const char *dir = NULL;
    bench_opts b = {.prefill = !strcmp(argv[0], "prefill"), .ntok = 16, .prompt = -1, .batch = 1, .window = 1024,
                    .rollback = -1};
    const shape *sh = &QWEN3_06B;
    int run_rosa = 1, run_window = 1; /* --rosa-only / --no-rosa-run drop one of the two runs */
    long v;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(o, "--model") && has) dir = argv[++i];
        else if (!strcmp(o, "--threads") && has) { if ((v = cli_parse_long(argv[++i], 0, 256, o)) < 0) return 2; b.threads = (int)v; }
        else if (!strcmp(o, "--tokens") && has) { if ((v = cli_parse_long(argv[++i], 1, 100000, o)) < 0) return 2; b.ntok = (int)v; }
        else if (!strcmp(o, "--prompt") && has) { if ((v = cli_parse_long(argv[++i], 1, 1000000, o)) < 0) return 2; b.prompt = (int)v; }
        else if (!strcmp(o, "--batch") && has) { if ((v = cli_parse_long(argv[++i], 1, 4096, o)) < 0) return 2; b.batch = (int)v; }
        else if (!strcmp(o, "--window") && has) { if ((v = cli_parse_long(argv[++i], 1, 1 << 30, o)) < 0) return 2; b.window = (int)v; }
        else if (!strcmp(o, "--device") && has) b.device = argv[++i];
        else if (!strcmp(o, "--precision") && has) b.precision = argv[++i];
        else if (!strcmp(o, "--gpu-memory") && has) b.gpu_memory = (size_t)(atof(argv[++i]) * 1073741824.0);
        else if (!strcmp(o, "--rollback-tokens") && has) {
            if ((v = cli_parse_long(argv[++i], 0, ROSA_ROLLBACK_MAX, o)) < 0) return 2;
            b.rollback = (int)v;
        }
        else if (!strcmp(o, "--rosa-only")) run_window = 0;
        else if (!strcmp(o, "--no-rosa-run")) run_rosa = 0;
        else if (!strcmp(o, "--shape") && has) {
            const char *s = argv[++i];
            if (!strcmp(s, "0.6b")) sh = &QWEN3_06B;
            else if (!strcmp(s, "1.7b")) sh = &QWEN3_17B;
            else { fprintf(stderr, "rosa-cli bench: --shape is 0.6b or 1.7b\n"); return 2; }
        }
        else {
            fprintf(stderr, "rosa-cli bench %s: unknown option '%s' (--model DIR --threads N --tokens N --prompt N --batch B "
                            "--window W --device cpu|cuda --precision f32|bf16 --gpu-memory GIB --rollback-tokens N --shape 0.6b|1.7b "
                            "--rosa-only --no-rosa-run)\n",
                    argv[0], o);
            return 2;
        }
    }
    if (b.prompt < 0) b.prompt = b.prefill ? 8192 : 64;
    int cuda = b.device && !strcmp(b.device, "cuda");
    char def[4096];
    if (!dir) {
        snprintf(def, sizeof def, "%s/rosa-bench-qwen3-%s", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
                 sh == &QWEN3_06B ? "0.6b" : "1.7b");
        if (make_random_model(def, sh)) { fprintf(stderr, "bench: cannot write %s\n", def); return 1; }
        dir = def;
    }
    if (b.threads == 0) b.threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (cuda) {
        b.bw = 0; /* the CUDA backend reports its copy bandwidth through the model below */
    } else if (!b.prefill) {
        /* measure bandwidth in a child process so its 1 GiB buffer does not count in our peak RSS */
        int fds[2];
        if (pipe(fds) == 0) {
            pid_t pid = fork();
            if (pid == 0) {
                double bw = measure_read_bw(b.threads);
                ssize_t w = write(fds[1], &bw, sizeof bw);
                _exit(w == sizeof bw ? 0 : 1);
            }
            close(fds[1]);
            if (pid > 0 && read(fds[0], &b.bw, sizeof b.bw) != sizeof b.bw) b.bw = 0;
            close(fds[0]);
            if (pid > 0) waitpid(pid, NULL, 0);
        }
        if (b.bw <= 0) { fprintf(stderr, "bench decode: bandwidth measurement failed\n"); return 1; }
    }
    if (cuda && !b.prefill) {
        cli_model_args a = {0};
        rosa_load_opts_init(&a.opts);
        a.model = dir;
        a.opts.device = b.device;
        a.opts.precision = b.precision;
        a.opts.gpu_memory = b.gpu_memory;
        rosa_model *m = cli_load_model(&a);
        if (!m) return 1;
        b.bw = m->backend->copy_bandwidth ? m->backend->copy_bandwidth(m) : 0;
        rosa_model_free(m);
        if (b.bw <= 0) { fprintf(stderr, "bench decode: device bandwidth measurement failed\n"); return 1; }
    }
    char adapter[4200];
    snprintf(adapter, sizeof adapter, "%s/rosa_adapter.safetensors", dir);
    if (!run_rosa && !run_window) {
        fprintf(stderr, "rosa-cli bench %s: --rosa-only and --no-rosa-run leave nothing to run\n", argv[0]);
        return 2;
    }
    int rc = run_rosa ? run_one(dir, adapter, &b, "rosa") : 0;
    if (!rc && run_window) rc = run_one(dir, NULL, &b, "window_only");
    return rc;
}
