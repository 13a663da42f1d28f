/* bench_decode.c: `rosa-cli bench decode`: batch-1 decode tokens/s of a randomly initialised
 * Qwen3-0.6B-shaped bf16 model, with and without a ROSA adapter, against the memory-bandwidth
 * roofline (weight bytes read per token / measured read bandwidth).
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

typedef struct shape {
    int V, C, L, Hq, Hkv, D, F;
} shape;

static const shape QWEN3_06B = {151936, 1024, 28, 16, 8, 128, 3072};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
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
    uint64_t s = 0;
    for (size_t i = 0; i < b->n; i++) s += b->p[i];
    b->sum = s;
    return NULL;
}

/* Best of several passes over a 1 GiB buffer with nthreads readers, in bytes/s. */
static double measure_read_bw(int nthreads) {
    size_t bytes = (size_t)1 << 30, n = bytes / sizeof(uint64_t);
    uint64_t *buf = malloc(bytes);
    if (!buf) return 0;
    for (size_t i = 0; i < n; i++) buf[i] = i;
    double best = 0;
    for (int rep = 0; rep < 4; rep++) {
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

static int run_one(const char *dir, const char *adapter, int threads, int prompt, int ntok, double bw, const char *label) {
    cli_model_args a = {0};
    rosa_load_opts_init(&a.opts);
    a.model = dir;
    a.opts.adapter = adapter;
    a.opts.threads = threads;
    a.opts.window = 1024;
    a.opts.global_layers = 1;
    a.opts.bits_per_route = 4;
    rosa_model *m = cli_load_model(&a);
    if (!m) return 1;
    const rosa_model_info *in = rosa_model_get_info(m);
    rosa_session *s;
    if (rosa_session_new(m, &s)) { rosa_model_free(m); return 1; }
    int32_t *ids = malloc((size_t)prompt * sizeof *ids);
    for (int i = 0; i < prompt; i++) ids[i] = (int32_t)(rnd32() % (uint32_t)in->vocab);
    int rc = rosa_session_feed(s, ids, prompt, NULL);
    /* warm-up token, then timed greedy decode */
    int32_t t = 0;
    double t0 = 0;
    for (int k = 0; !rc && k <= ntok; k++) {
        if (k == 1) t0 = now_s();
        const float *l = rosa_session_logits(s);
        t = 0;
        for (int v = 1; v < in->vocab; v++) if (l[v] > l[t]) t = v;
        rc = rosa_session_feed(s, &t, 1, NULL);
    }
    double dt = now_s() - t0;
    if (rc) { fprintf(stderr, "bench decode: %s\n", rosa_strerror(rc)); }
    else {
        double tps = ntok / dt, bpt = bytes_per_token(in), roof = bw / bpt;
        rosa_session_mem mem;
        rosa_session_memory(s, &mem);
        printf("bench decode config=%s layers=%d hidden=%d rosa_layers=%d window=1024 threads=%d prompt=%d tokens=%d "
               "tokens_per_s=%.3f ms_per_token=%.2f weight_bytes_per_token=%.0f read_bw_gbs=%.2f roofline_tokens_per_s=%.3f "
               "roofline_fraction=%.3f kv_bytes=%zu rosa_bytes=%zu max_rss_mib=%.0f\n",
               label, in->layers, in->hidden, in->n_rosa_layers, in->threads, prompt, ntok, tps, 1000 * dt / ntok, bpt,
               bw / 1e9, roof, tps / roof, mem.kv_bytes, mem.rosa_bytes, max_rss_mib());
        fflush(stdout);
    }
    free(ids);
    rosa_session_free(s);
    rosa_model_free(m);
    return rc ? 1 : 0;
}

int cli_bench_decode(int argc, char **argv) {
    const char *dir = NULL;
    int threads = 0, ntok = 16, prompt = 64;
    long v;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) { if ((v = cli_parse_long(argv[++i], 0, 256, "--threads")) < 0) return 2; threads = (int)v; }
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc) { if ((v = cli_parse_long(argv[++i], 1, 100000, "--tokens")) < 0) return 2; ntok = (int)v; }
        else if (!strcmp(argv[i], "--prompt") && i + 1 < argc) { if ((v = cli_parse_long(argv[++i], 1, 1000000, "--prompt")) < 0) return 2; prompt = (int)v; }
        else { fprintf(stderr, "rosa-cli bench decode: unknown option '%s' (--model DIR --threads N --tokens N --prompt N)\n", argv[i]); return 2; }
    }
    char def[4096];
    if (!dir) {
        snprintf(def, sizeof def, "%s/rosa-bench-qwen3-0.6b", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (make_random_model(def, &QWEN3_06B)) { fprintf(stderr, "bench decode: cannot write %s\n", def); return 1; }
        dir = def;
    }
    if (threads == 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    /* measure bandwidth in a child process so its 1 GiB buffer does not count in our peak RSS */
    double bw = 0;
    int fds[2];
    if (pipe(fds) == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            double b = measure_read_bw(threads);
            ssize_t w = write(fds[1], &b, sizeof b);
            _exit(w == sizeof b ? 0 : 1);
        }
        close(fds[1]);
        if (pid > 0 && read(fds[0], &bw, sizeof bw) != sizeof bw) bw = 0;
        close(fds[0]);
        if (pid > 0) waitpid(pid, NULL, 0);
    }
    if (bw <= 0) { fprintf(stderr, "bench decode: bandwidth measurement failed\n"); return 1; }
    char adapter[4200];
    snprintf(adapter, sizeof adapter, "%s/rosa_adapter.safetensors", dir);
    int rc = run_one(dir, adapter, threads, prompt, ntok, bw, "rosa");
    if (!rc) rc = run_one(dir, NULL, threads, prompt, ntok, bw, "window_only");
    return rc;
}
