/* demo_model.c: the built-in demo (../shared/docs/COPY-DEMO.md), generated here so that
 * `rosa-server` with no --model serves a real model on a fresh machine.
 *
 * A 2-layer Qwen3 with a 2-token attention window whose layer 1 ROSA routes recall the byte
 * that followed the current context earlier on: it copies passkeys from far outside its window.
 * Everything is deterministic (fixed seed for the +-1 byte codes); files are written once to a
 * cache directory (temporary names, then rename) and reused on later starts. */
#include "demo_model.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sbuf.h"

#define V 256
#define C 136
#define D 64
#define CODE 64
#define FF 8
#define DEMO_VERSION "demo-copy-v1"

/* ---------------------------------------------------------------- safetensors writer */

typedef struct wt {
    const char *name;
    int ndim;
    int64_t shape[2];
    float *data;
} wt;

static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7FFF + ((u >> 16) & 1); /* round to nearest even (values here are finite) */
    return (uint16_t)(u >> 16);
}

static int write_all(const char *path, const void *p, size_t n) {
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return -1;
    int ok = fwrite(p, 1, n, f) == n;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path)) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int write_safetensors(const char *path, wt *t, int n) {
    sbuf h = {0}, body = {0};
    sb_puts(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        int64_t numel = t[i].shape[0] * (t[i].ndim > 1 ? t[i].shape[1] : 1);
        sb_printf(&h, ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[%lld", t[i].name,
                  (long long)t[i].shape[0]);
        if (t[i].ndim > 1) sb_printf(&h, ",%lld", (long long)t[i].shape[1]);
        sb_printf(&h, "],\"data_offsets\":[%zu,%zu]}", off, off + (size_t)numel * 2);
        for (int64_t k = 0; k < numel; k++) {
            uint16_t b = to_bf16(t[i].data[k]);
            sb_put(&body, &b, 2); /* little-endian hosts only, as the engine */
        }
        off += (size_t)numel * 2;
    }
    sb_puts(&h, "}");
    while (h.len % 8) sb_puts(&h, " ");
    sbuf all = {0};
    uint64_t hl = h.len;
    sb_put(&all, &hl, 8);
    sb_put(&all, h.p, h.len);
    sb_put(&all, body.p, body.len);
    int rc = (h.oom || body.oom || all.oom) ? -1 : write_all(path, all.p, all.len);
    sb_free(&h);
    sb_free(&body);
    sb_free(&all);
    return rc;
}

/* ---------------------------------------------------------------- the wiring */

static float *zeros(size_t n) { return calloc(n, sizeof(float)); }

static int build_and_write(const char *mdir, const char *adir) {
    /* +-1 codes per byte from a fixed xorshift stream */
    static float code[V][CODE];
    uint64_t x = 0x5DEECE66Dull;
    for (int b = 0; b < V; b++)
        for (int c = 0; c < CODE; c++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            code[b][c] = (x >> 33) & 1 ? 1.0f : -1.0f;
        }
    const float a = 1.0f, bconst = 4.0f;
    /* RMS of an embedding row, so that RMSNorm(u)[128] * g == 1 */
    float rms = sqrtf((CODE * a * a + bconst * bconst) / C);
    float g = rms / bconst;
    float *emb = zeros(V * C), *lm = zeros(V * C), *ones_c = zeros(C), *ones_d = zeros(D);
    float *q0 = zeros(D * C), *k0 = zeros(D * C), *v0 = zeros(D * C), *o0 = zeros(C * D);
    float *qn0 = zeros(D), *kn0 = zeros(D), *z_qkv = zeros(D * C), *z_o = zeros(C * D);
    float *z_up = zeros(FF * C), *z_down = zeros(C * FF);
    float *rq = zeros(C * C), *rk = zeros(C * C), *rv = zeros(C * C), *ro = zeros(C * C);
    float *e0 = zeros(C), *e1 = zeros(C), *alpha = zeros(C);
    int rc = -1;
    if (!emb || !lm || !ones_c || !ones_d || !q0 || !k0 || !v0 || !o0 || !qn0 || !kn0 ||
        !z_qkv || !z_o || !z_up || !z_down || !rq || !rk || !rv || !ro || !e0 || !e1 || !alpha)
        goto out;
    for (int b = 0; b < V; b++) {
        for (int c = 0; c < CODE; c++) {
            emb[b * C + c] = a * code[b][c];
            lm[b * C + c] = code[b][c];
        }
        emb[b * C + 128] = bconst;
    }
    for (int i = 0; i < C; i++) ones_c[i] = 1.0f;
    for (int i = 0; i < D; i++) ones_d[i] = 1.0f;
    /* layer 0: previous-token head in the four fastest rotary pairs */
    for (int j = 0; j < 4; j++) {
        float f = powf(10000.0f, -2.0f * (float)j / D);
        q0[j * C + 128] = g;
        k0[j * C + 128] = g * cosf(f);
        k0[(j + D / 2) * C + 128] = g * sinf(f);
        qn0[j] = qn0[j + D / 2] = 6.0f;
        kn0[j] = kn0[j + D / 2] = 6.0f;
    }
    for (int i = 0; i < D; i++) {
        v0[i * C + i] = rms; /* undo RMSNorm: v = current code */
        o0[(CODE + i) * D + i] = 1.0f;
    }
    /* layer 1: ROSA routes (queries: current code, keys/values: previous code) */
    const float s = 3.0f;
    for (int c = 0; c < C; c++) {
        if (c < 128) {
            rq[c * C + c % 64] = 1.0f;
            rk[c * C + 64 + c % 64] = 1.0f;
            rv[c * C + 64 + c % 64] = 1.0f;
            e0[c] = -s;
            e1[c] = s;
            ro[(c % 64) * C + c] = 0.5f;
        } else {
            rq[c * C + 128] = rk[c * C + 128] = rv[c * C + 128] = 1.0f;
        }
    }
    wt base[] = {
        {"lm_head.weight", 2, {V, C}, lm},
        {"model.embed_tokens.weight", 2, {V, C}, emb},
        {"model.layers.0.input_layernorm.weight", 1, {C}, ones_c},
        {"model.layers.0.mlp.down_proj.weight", 2, {C, FF}, z_down},
        {"model.layers.0.mlp.gate_proj.weight", 2, {FF, C}, z_up},
        {"model.layers.0.mlp.up_proj.weight", 2, {FF, C}, z_up},
        {"model.layers.0.post_attention_layernorm.weight", 1, {C}, ones_c},
        {"model.layers.0.self_attn.k_norm.weight", 1, {D}, kn0},
        {"model.layers.0.self_attn.k_proj.weight", 2, {D, C}, k0},
        {"model.layers.0.self_attn.o_proj.weight", 2, {C, D}, o0},
        {"model.layers.0.self_attn.q_norm.weight", 1, {D}, qn0},
        {"model.layers.0.self_attn.q_proj.weight", 2, {D, C}, q0},
        {"model.layers.0.self_attn.v_proj.weight", 2, {D, C}, v0},
        {"model.layers.1.input_layernorm.weight", 1, {C}, ones_c},
        {"model.layers.1.mlp.down_proj.weight", 2, {C, FF}, z_down},
        {"model.layers.1.mlp.gate_proj.weight", 2, {FF, C}, z_up},
        {"model.layers.1.mlp.up_proj.weight", 2, {FF, C}, z_up},
        {"model.layers.1.post_attention_layernorm.weight", 1, {C}, ones_c},
        {"model.layers.1.self_attn.k_norm.weight", 1, {D}, ones_d},
        {"model.layers.1.self_attn.k_proj.weight", 2, {D, C}, z_qkv},
        {"model.layers.1.self_attn.o_proj.weight", 2, {C, D}, z_o},
        {"model.layers.1.self_attn.q_norm.weight", 1, {D}, ones_d},
        {"model.layers.1.self_attn.q_proj.weight", 2, {D, C}, z_qkv},
        {"model.layers.1.self_attn.v_proj.weight", 2, {D, C}, z_qkv},
        {"model.norm.weight", 1, {C}, ones_c},
    };
    wt adapter[] = {
        {"model.layers.1.rosa_alpha", 1, {C}, alpha},
        {"model.layers.1.rosa_e0", 1, {C}, e0},
        {"model.layers.1.rosa_e1", 1, {C}, e1},
        {"model.layers.1.rosa_k_proj.weight", 2, {C, C}, rk},
        {"model.layers.1.rosa_out.weight", 2, {C, C}, ro},
        {"model.layers.1.rosa_q_proj.weight", 2, {C, C}, rq},
        {"model.layers.1.rosa_v_proj.weight", 2, {C, C}, rv},
    };
    char p[1100];
    snprintf(p, sizeof p, "%s/model.safetensors", mdir);
    if (write_safetensors(p, base, (int)(sizeof base / sizeof base[0]))) goto out;
    snprintf(p, sizeof p, "%s/rosa_adapter.safetensors", adir);
    if (write_safetensors(p, adapter, (int)(sizeof adapter / sizeof adapter[0]))) goto out;
    rc = 0;
out:
    free(emb), free(lm), free(ones_c), free(ones_d), free(q0), free(k0), free(v0), free(o0);
    free(qn0), free(kn0), free(z_qkv), free(z_o), free(z_up), free(z_down);
    free(rq), free(rk), free(rv), free(ro), free(e0), free(e1), free(alpha);
    return rc;
}

/* ---------------------------------------------------------------- JSON side files */

static const char config_json[] =
    "{\n  \"architectures\": [\"Qwen3ForCausalLM\"],\n  \"model_type\": \"qwen3\",\n"
    "  \"vocab_size\": 256,\n  \"hidden_size\": 136,\n  \"intermediate_size\": 8,\n"
    "  \"num_hidden_layers\": 2,\n  \"num_attention_heads\": 1,\n"
    "  \"num_key_value_heads\": 1,\n  \"head_dim\": 64,\n  \"hidden_act\": \"silu\",\n"
    "  \"rms_norm_eps\": 1e-06,\n  \"rope_theta\": 10000.0,\n  \"rope_scaling\": null,\n"
    "  \"tie_word_embeddings\": false,\n  \"max_position_embeddings\": 1048576,\n"
    "  \"attention_bias\": false,\n  \"attention_dropout\": 0.0,\n  \"bos_token_id\": null,\n"
    "  \"eos_token_id\": null,\n  \"torch_dtype\": \"bfloat16\",\n"
    "  \"use_sliding_window\": true,\n  \"sliding_window\": 2,\n  \"max_window_layers\": 0,\n"
    "  \"layer_types\": [\"sliding_attention\", \"sliding_attention\"]\n}\n";

static const char rosa_config_json[] =
    "{\n  \"bits_per_route\": 4,\n  \"inject_mode\": \"post_attn\",\n  \"window\": 2,\n"
    "  \"global_layers\": 0\n}\n";

/* GPT-2 byte-to-unicode table: printable Latin-1 bytes map to themselves, the rest to
 * U+0100 upwards in byte order. */
static int byte_char(int b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return b;
    int n = 0;
    for (int i = 0; i < b; i++)
        if (!((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || (i >= 174 && i <= 255))) n++;
    return 256 + n;
}

static int write_tokenizer(const char *path) {
    sbuf t = {0};
    const char *bl = "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": "
                     "false, \"use_regex\": false}";
    sb_printf(&t, "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null, "
                  "\"added_tokens\": [], \"normalizer\": null, \"pre_tokenizer\": %s, "
                  "\"post_processor\": %s, \"decoder\": %s, \"model\": {\"type\": \"BPE\", "
                  "\"dropout\": null, \"unk_token\": null, \"continuing_subword_prefix\": \"\", "
                  "\"end_of_word_suffix\": \"\", \"fuse_unk\": false, \"byte_fallback\": false, "
                  "\"ignore_merges\": false, \"vocab\": {",
              bl, bl, bl);
    for (int b = 0; b < V; b++) {
        int cp = byte_char(b);
        char u[4];
        size_t n;
        if (cp < 0x80) u[0] = (char)cp, n = 1;
        else u[0] = (char)(0xC0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
        if (b) sb_puts(&t, ", ");
        sb_json_str(&t, u, n);
        sb_printf(&t, ": %d", b);
    }
    sb_puts(&t, "}, \"merges\": []}}");
    int rc = t.oom ? -1 : write_all(path, t.p, t.len);
    sb_free(&t);
    return rc;
}

/* ---------------------------------------------------------------- entry point */

static int mkdirs(const char *path) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(tmp, 0755) && errno != EEXIST ? -1 : 0;
}

/* The fallback under a shared temporary directory: a directory of our own that nobody else can
 * write (created 0700; an existing one must be a real directory, owned by us, mode 0700), or we
 * refuse: another user could otherwise plant a model there, or a symbolic link to write
 * through. */
static int private_dir(const char *path, char *err, size_t errlen) {
    if (mkdir(path, 0700) && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (lstat(path, &st)) {
        snprintf(err, errlen, "cannot inspect %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
        snprintf(err, errlen, "%s is not a private directory of this user (a real directory, "
                 "owner uid %u, mode 0700): refusing to use it for the demo model; set "
                 "--cache-dir, XDG_CACHE_HOME or HOME", path, (unsigned)geteuid());
        return -1;
    }
    return 0;
}

int srv_demo_default_dir(char *out, size_t n, char *err, size_t errlen) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && xdg[0]) {
        snprintf(out, n, "%s/rosa-serve/%s", xdg, DEMO_VERSION);
    } else if (home && home[0]) {
        snprintf(out, n, "%s/.cache/rosa-serve/%s", home, DEMO_VERSION);
    } else {
        const char *tmp = getenv("TMPDIR");
        char base[700];
        snprintf(base, sizeof base, "%s/rosa-serve-%u", tmp && tmp[0] == '/' ? tmp : "/tmp",
                 (unsigned)geteuid());
        if (private_dir(base, err, errlen)) return -1;
        snprintf(out, n, "%s/%s", base, DEMO_VERSION);
    }
    return 0;
}

int srv_demo_model_write(const char *cache_dir, char *model_dir, size_t mlen, char *adapter,
                         size_t alen, char *tokenizer, size_t tlen, char *err, size_t errlen) {
    char dir[900];
    if (cache_dir) snprintf(dir, sizeof dir, "%s", cache_dir);
    else if (srv_demo_default_dir(dir, sizeof dir, err, errlen)) return -1;
    char mdir[1000], adir[1000], p[1100];
    snprintf(mdir, sizeof mdir, "%s/model", dir);
    snprintf(adir, sizeof adir, "%s/adapter", dir);
    snprintf(model_dir, mlen, "%s", mdir);
    snprintf(adapter, alen, "%s/rosa_adapter.safetensors", adir);
    snprintf(tokenizer, tlen, "%s/tokenizer.json", mdir);
    snprintf(p, sizeof p, "%s/complete", dir);
    struct stat st;
    if (stat(p, &st) == 0) return 0;
    if (mkdirs(mdir) || mkdirs(adir)) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    char cp[1100];
    snprintf(cp, sizeof cp, "%s/config.json", mdir);
    char rp[1100];
    snprintf(rp, sizeof rp, "%s/rosa_config.json", adir);
    if (build_and_write(mdir, adir) || write_all(cp, config_json, sizeof config_json - 1) ||
        write_all(rp, rosa_config_json, sizeof rosa_config_json - 1) || write_tokenizer(tokenizer) ||
        write_all(p, DEMO_VERSION "\n", sizeof DEMO_VERSION)) {
        snprintf(err, errlen, "cannot write the demo model into %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}
