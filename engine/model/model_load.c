/* engine/model/: checkpoints in, a bound model out: config.json (config.c), safetensors and
 * shards (safetensors.c), PyTorch .pt files (pt_reader.c over zip_reader.c and pickle_vm.c), the
 * tensor table (tensor_set.c), the command-line run options (run_options.c) and, here, binding.
 *
 * model_load.c: rosa_model_load: config + base checkpoint (single or sharded safetensors) +
 * optional ROSA adapter (.pt or safetensors, or merged into the base) + rosa_config.json sidecar
 * + run options, then binds every tensor to its layer with shape checks, and starts a backend. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpu/cpu_kernels.h"
#include "core/errors.h"
#include "core/model.h"

#define INDEX_MAX_BYTES (64u << 20)
#define SIDECAR_MAX_BYTES (64u << 10)

void rosa_load_opts_init(rosa_load_opts *o) {
    memset(o, 0, sizeof *o);
    o->window = -1;
    o->global_layers = -1;
    o->bits_per_route = -1;
    o->inject_mode = -1;
    o->rollback_tokens = -1;
}

int rosa_device_count(const char *device) {
    if (!device) return 0;
    if (!strcmp(device, "cpu")) return 1;
    if (!strcmp(device, "cuda")) return rosa__cuda_device_count();
    return 0;
}

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static char *slurp(const char *path, size_t max, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = malloc(max + 1);
    size_t n = b ? fread(b, 1, max + 1, f) : 0;
    fclose(f);
    if (!b || n > max) { free(b); return NULL; }
    b[n] = 0;
    *len = n;
    return b;
}

/* Base checkpoint: shards listed by model.safetensors.index.json, or model.safetensors. */
static int load_base(rosa__tensor_set *s, const char *dir, char *err, size_t errlen) {
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (!is_file(path)) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        if (!is_file(path))
            return rosa__err(err, errlen, ROSA_ERR_IO, "%s: no model.safetensors or model.safetensors.index.json", dir);
        return rosa__safetensors_load(s, path, err, errlen);
    }
    size_t len;
    char *text = slurp(path, INDEX_MAX_BYTES, &len);
    if (!text) return rosa__err(err, errlen, ROSA_ERR_IO, "%s: cannot read (or larger than %u bytes)", path, INDEX_MAX_BYTES);
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *wm = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!cJSON_IsObject(wm)) {
        cJSON_Delete(root);
        return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: no \"weight_map\" object", path);
    }
    int rc = 0;
    /* load each distinct shard once, then check that every listed tensor is where it says */
    for (const cJSON *e = wm->child; e && !rc; e = e->next) {
        if (!cJSON_IsString(e) || strchr(e->valuestring, '/') || strcmp(e->valuestring, "..") == 0 || !*e->valuestring) {
            rc = rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: weight_map entry for '%s' is not a file name in the directory", path, e->string);
            break;
        }
        char shard[4096];
        snprintf(shard, sizeof shard, "%s/%s", dir, e->valuestring);
        int seen = 0;
        for (int i = 0; i < s->nfiles; i++) seen |= strcmp(s->files[i], shard) == 0;
        if (!seen) rc = rosa__safetensors_load(s, shard, err, errlen);
    }
    for (const cJSON *e = wm->child; e && !rc; e = e->next) {
        const rosa__tensor *t = rosa__tset_find(s, e->string);
        if (!t) rc = rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: tensor '%s' is listed in %s but not found there", path, e->string, e->valuestring);
    }
    cJSON_Delete(root);
    return rc;
}

typedef struct run_opts {
    int window, global_layers, bits, mode; /* -1 unset */
} run_opts;

static int parse_mode(const char *s) {
    if (!strcmp(s, "post_attn")) return ROSA_INJECT_POST_ATTN;
    if (!strcmp(s, "pre_attn")) return ROSA_INJECT_PRE_ATTN;
    return -1;
}

/* rosa_config.json: {"bits_per_route", "inject_mode", "window", "global_layers"} */
static int load_sidecar(const char *path, run_opts *o, char *err, size_t errlen) {
    size_t len;
    char *text = slurp(path, SIDECAR_MAX_BYTES, &len);
    if (!text) return rosa__err(err, errlen, ROSA_ERR_IO, "%s: cannot read (or larger than %u bytes)", path, SIDECAR_MAX_BYTES);
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    int rc = 0;
    if (!cJSON_IsObject(root)) {
        rc = rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: not a JSON object", path);
        goto done;
    }
    const char *ikeys[] = {"bits_per_route", "window", "global_layers"};
    int *dst[] = {&o->bits, &o->window, &o->global_layers};
    const long lo[] = {1, 1, 0}, hi[] = {8, 1L << 30, 1024};
    for (int i = 0; i < 3; i++) {
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, ikeys[i]);
        if (!j || cJSON_IsNull(j)) continue;
        if (!cJSON_IsNumber(j) || floor(j->valuedouble) != j->valuedouble || j->valuedouble < lo[i] || j->valuedouble > hi[i]) {
            rc = rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: \"%s\" must be an integer in [%ld, %ld]", path, ikeys[i], lo[i], hi[i]);
            goto done;
        }
        *dst[i] = (int)j->valuedouble;
    }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "inject_mode");
    if (m && !cJSON_IsNull(m)) {
        if (!cJSON_IsString(m) || (o->mode = parse_mode(m->valuestring)) < 0) {
            rc = rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: \"inject_mode\" must be \"post_attn\" or \"pre_attn\"", path);
            goto done;
        }
    }
done:
    cJSON_Delete(root);
    return rc;
}

static int load_adapter(rosa__tensor_set *s, const char *path, char *sidecar, size_t sclen,
                        char *err, size_t errlen) {
    char file[4096];
    char dir[4096];
    if (is_dir(path)) {
        snprintf(dir, sizeof dir, "%s", path);
        snprintf(file, sizeof file, "%s/rosa_adapters.pt", path);
        if (!is_file(file)) snprintf(file, sizeof file, "%s/rosa_adapter.safetensors", path);
        if (!is_file(file)) snprintf(file, sizeof file, "%s/rosa_adapters.safetensors", path);
        if (!is_file(file))
            return rosa__err(err, errlen, ROSA_ERR_IO, "%s: no rosa_adapters.pt or rosa_adapter.safetensors in this directory", path);
    } else {
        snprintf(file, sizeof file, "%s", path);
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        else snprintf(dir, sizeof dir, ".");
    }
    snprintf(sidecar, sclen, "%s/rosa_config.json", dir);
    if (!is_file(sidecar)) sidecar[0] = 0;
    FILE *f = fopen(file, "rb");
    if (!f) return rosa__err(err, errlen, ROSA_ERR_IO, "%s: cannot open adapter", file);
    unsigned char magic[4] = {0};
    size_t n = fread(magic, 1, 4, f);
    fclose(f);
    if (n == 4 && magic[0] == 'P' && magic[1] == 'K') return rosa__pt_load(s, file, err, errlen);
    return rosa__safetensors_load(s, file, err, errlen);
}

/* --- binding tensors to the model --- */

static const rosa__tensor *find2(const rosa_model *m, const char *name) {
    const rosa__tensor *t = rosa__tset_find(&m->adapter, name);
    return t ? t : rosa__tset_find(&m->base, name);
}

static int bind_mat(rosa_model *m, const char *name, int rows, int cols, rosa__mat *out,
                    char *err, size_t errlen) {
    const rosa__tensor *t = find2(m, name);
    if (!t) return rosa__err(err, errlen, ROSA_ERR_FORMAT, "tensor '%s' is missing from the checkpoint", name);
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols)
        return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: tensor '%s' has shape [%lld%s%lld], expected [%d, %d]", t->file, name,
                         (long long)(t->ndim > 0 ? t->shape[0] : 0), t->ndim > 1 ? ", " : "",
                         (long long)(t->ndim > 1 ? t->shape[1] : 0), rows, cols);
    out->dt = t->dtype;
    out->w = t->data;
    out->rows = rows;
    out->cols = cols;
    return 0;
}

static float to_f32(rosa_dtype dt, const void *p, int64_t i) {
    if (dt == ROSA_DT_F32) return ((const float *)p)[i];
    uint16_t h = ((const uint16_t *)p)[i];
    if (dt == ROSA_DT_BF16) {
        uint32_t u = (uint32_t)h << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    return rosa__half_to_float(h);
}

static int bind_vec(rosa_model *m, const char *name, int n, float **out, char *err, size_t errlen) {
    const rosa__tensor *t = find2(m, name);
    if (!t) return rosa__err(err, errlen, ROSA_ERR_FORMAT, "tensor '%s' is missing from the checkpoint", name);
    if (t->ndim != 1 || t->shape[0] != n)
        return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: tensor '%s' has %d dims / %lld elements, expected [%d]", t->file, name,
                         t->ndim, (long long)rosa__tensor_numel(t), n);
    float *v = malloc((size_t)n * sizeof *v);
    if (!v) return rosa__err(err, errlen, ROSA_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) v[i] = to_f32(t->dtype, t->data, i);
    *out = v;
    return 0;
}

static const char *ROSA_NAMES[] = {"rosa_q_proj.weight", "rosa_k_proj.weight", "rosa_v_proj.weight",
                                   "rosa_out.weight", "rosa_e0", "rosa_e1", "rosa_alpha"};
#define N_ROSA_NAMES 7

/* Every adapter tensor must be a ROSA tensor of an existing layer. */
static int check_adapter_names(const rosa_model *m, char *err, size_t errlen) {
    for (int i = 0; i < m->adapter.n; i++) {
        const rosa__tensor *t = &m->adapter.t[i];
        int layer = -1, off = 0;
        if (sscanf(t->name, "model.layers.%d.%n", &layer, &off) != 1 || off == 0 || layer < 0 || layer >= m->L)
            return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: tensor '%s' is not a ROSA tensor of a layer in 0..%d", t->file, t->name, m->L - 1);
        int ok = 0;
        for (int k = 0; k < N_ROSA_NAMES; k++) ok |= strcmp(t->name + off, ROSA_NAMES[k]) == 0;
        if (!ok) return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: tensor '%s' is not a known ROSA tensor", t->file, t->name);
    }
    return 0;
}

static int bind_layers(rosa_model *m, const run_opts *ro, int no_rosa, char *err, size_t errlen) {
    char n[256];
    int C = m->C, D = m->D, rc;
    /* which layers carry ROSA weights */
    for (int i = 0; i < m->L; i++) {
        int have = 0, first_missing = -1;
        for (int k = 0; k < N_ROSA_NAMES; k++) {
            snprintf(n, sizeof n, "model.layers.%d.%s", i, ROSA_NAMES[k]);
            int h = find2(m, n) != NULL;
            if (k < 6) {
                have += h;
                if (!h && first_missing < 0) first_missing = k;
            }
        }
        if (have > 0 && have < 6)
            return rosa__err(err, errlen, ROSA_ERR_FORMAT, "layer %d has some ROSA tensors but 'model.layers.%d.%s' is missing", i, i, ROSA_NAMES[first_missing]);
        m->layer_rosa_flag[i] = have == 6 && !no_rosa;
    }
    m->n_rosa = 0;
    for (int i = 0; i < m->L; i++) m->n_rosa += m->layer_rosa_flag[i];
    m->M = ro->bits > 0 ? ro->bits : 4;
    m->inject_mode = ro->mode >= 0 ? ro->mode : ROSA_INJECT_POST_ATTN;
    m->R = 0;
    if (m->n_rosa) {
        if (C % m->M)
            return rosa__err(err, errlen, ROSA_ERR_FORMAT, "hidden size %d is not a multiple of bits_per_route M = %d (C %% M != 0)", C, m->M);
        m->R = C / m->M;
    }
    int ri = 0;
    for (int i = 0; i < m->L; i++) {
        rosa__layer *ly = &m->layer[i];
#define MAT(field, suffix, r, c)                                                          \
    snprintf(n, sizeof n, "model.layers.%d.%s", i, suffix);                                \
    if ((rc = bind_mat(m, n, r, c, &ly->field, err, errlen))) return rc;
#define VEC(field, suffix, len)                                                           \
    snprintf(n, sizeof n, "model.layers.%d.%s", i, suffix);                                \
    if ((rc = bind_vec(m, n, len, &ly->field, err, errlen))) return rc;
        MAT(q, "self_attn.q_proj.weight", m->Hq * D, C);
        MAT(k, "self_attn.k_proj.weight", m->Hkv * D, C);
        MAT(v, "self_attn.v_proj.weight", m->Hkv * D, C);
        MAT(o, "self_attn.o_proj.weight", C, m->Hq * D);
        MAT(gate, "mlp.gate_proj.weight", m->F, C);
        MAT(up, "mlp.up_proj.weight", m->F, C);
        MAT(down, "mlp.down_proj.weight", C, m->F);
        VEC(in_norm, "input_layernorm.weight", C);
        VEC(post_norm, "post_attention_layernorm.weight", C);
        VEC(q_norm, "self_attn.q_norm.weight", D);
        VEC(k_norm, "self_attn.k_norm.weight", D);
        ly->window = m->layer_window[i];
        ly->rosa = -1;
        if (m->layer_rosa_flag[i]) {
            ly->rosa = ri++;
            MAT(rq, "rosa_q_proj.weight", C, C);
            MAT(rk, "rosa_k_proj.weight", C, C);
            MAT(rv, "rosa_v_proj.weight", C, C);
            MAT(rout, "rosa_out.weight", C, C);
            VEC(e0, "rosa_e0", C);
            VEC(e1, "rosa_e1", C);
            if (m->inject_mode == ROSA_INJECT_PRE_ATTN) {
                VEC(alpha, "rosa_alpha", C);
                for (int c = 0; c < C; c++) ly->alpha[c] = 1.0f / (1.0f + expf(-ly->alpha[c]));
            }
        }
#undef MAT
#undef VEC
    }
    if ((rc = bind_mat(m, "model.embed_tokens.weight", m->V, C, &m->embed, err, errlen))) return rc;
    if ((rc = bind_vec(m, "model.norm.weight", C, &m->final_norm, err, errlen))) return rc;
    if (m->cfg.tied) m->lm_head = m->embed;
    else if ((rc = bind_mat(m, "lm_head.weight", m->V, C, &m->lm_head, err, errlen))) return rc;
    return 0;
}

/* Which layers are windowed, and with which window (ROSA-SPEC section 1): global_layers G makes
 * layers 0..G-1 global and the rest windowed (window: the run option, else config.json's);
 * window alone changes the window of the layers config.json marks windowed; neither: config.json.
 * window_flag: the window came from --window (else from the sidecar), for the messages. */
static int resolve_layout(rosa_model *m, const run_opts *ro, int window_flag, const char *sidecar,
                          char *err, size_t errlen) {
    int cfgW = 0;
    for (int i = 0; i < m->L; i++)
        if (m->cfg.layer_window[i] > 0) cfgW = m->cfg.layer_window[i];
    char from[4300];
    if (window_flag) snprintf(from, sizeof from, "--window %d", ro->window);
    else snprintf(from, sizeof from, "\"window\": %d in %s", ro->window, sidecar);
    if (ro->global_layers >= 0) {
        int G = ro->global_layers;
        int W = ro->window > 0 ? ro->window : cfgW > 0 ? cfgW : m->cfg.sliding_window;
        if (G < m->L && W <= 0)
            return rosa__err(err, errlen, ROSA_ERR_INVALID,
                             "global layers %d makes layers %d..%d windowed, but no window is set (config.json has no "
                             "sliding_window): add --window N",
                             G, G, m->L - 1);
        for (int i = 0; i < m->L; i++) m->layer_window[i] = i < G ? 0 : W;
    } else if (ro->window > 0) {
        if (cfgW == 0)
            return rosa__err(err, errlen, ROSA_ERR_INVALID,
                             "%s changes the window of windowed layers, but config.json makes every layer global: "
                             "add --global-layers G to make layers G..%d windowed (the published ROSA runs use "
                             "--global-layers 1)",
                             from, m->L - 1);
        for (int i = 0; i < m->L; i++) m->layer_window[i] = m->cfg.layer_window[i] > 0 ? ro->window : 0;
    } else {
        memcpy(m->layer_window, m->cfg.layer_window, (size_t)m->L * sizeof *m->layer_window);
    }
    return 0;
}

static void fill_info(rosa_model *m) {
    rosa_model_info *in = &m->info;
    in->vocab = m->V;
    in->hidden = m->C;
    in->layers = m->L;
    in->heads = m->Hq;
    in->kv_heads = m->Hkv;
    in->head_dim = m->D;
    in->ffn = m->F;
    const rosa__rope *rp = &m->cfg.rope;
    in->rope_theta = (float)rp->theta;
    in->rope.type = rosa__rope_type_name(rp->type);
    in->rope.theta = (float)rp->theta;
    in->rope.factor = (float)rp->factor;
    in->rope.original_max_positions = rp->original_max_pos;
    in->rope.attention_factor = m->rope_scale;
    in->rope.beta_fast = (float)rp->beta_fast;
    in->rope.beta_slow = (float)rp->beta_slow;
    in->rope.truncate = rp->truncate;
    in->rms_eps = m->cfg.eps;
    in->tied_embeddings = m->cfg.tied;
    in->bos_token = m->cfg.bos;
    in->eos_token = m->cfg.eos;
    in->max_positions = m->cfg.max_pos;
    in->layer_window = m->layer_window;
    in->layer_rosa = m->layer_rosa_flag;
    in->n_rosa_layers = m->n_rosa;
    in->bits_per_route = m->M;
    in->routes = m->R;
    in->inject_mode = m->inject_mode;
    size_t bytes = 0;
    int mixed = 0;
    rosa_dtype dt0 = m->embed.dt;
    const rosa__tensor_set *sets[2] = {&m->base, &m->adapter};
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < sets[s]->n; i++) {
            bytes += sets[s]->t[i].nbytes;
            if (sets[s]->t[i].ndim == 2 && sets[s]->t[i].dtype != dt0) mixed = 1;
        }
    in->weight_bytes = bytes;
    snprintf(m->weight_dtype, sizeof m->weight_dtype, "%s", mixed ? "mixed" : rosa__dtype_name(dt0));
    in->weight_dtype = m->weight_dtype;
    in->backend = m->backend->name;
    in->precision = m->precision == ROSA_PREC_BF16 ? "bf16" : "f32";
    in->threads = rosa__pool_size(m->pool);
    in->rollback_tokens = m->rollback;
}

void rosa_model_free(rosa_model *m) {
    if (!m) return;
    if (m->backend && m->bctx) m->backend->model_free(m);
    if (m->layer)
        for (int i = 0; i < m->L; i++) {
            rosa__layer *ly = &m->layer[i];
            free(ly->in_norm); free(ly->post_norm); free(ly->q_norm); free(ly->k_norm);
            free(ly->e0); free(ly->e1); free(ly->alpha);
        }
    free(m->layer);
    free(m->final_norm);
    free(m->inv_freq);
    free(m->layer_window);
    free(m->layer_rosa_flag);
    rosa__config_free(&m->cfg);
    rosa__tset_free(&m->base);
    rosa__tset_free(&m->adapter);
    rosa__pool_free(m->pool);
    free(m);
}

int rosa_model_load(const char *model_dir, const rosa_load_opts *opts, rosa_model **out,
                    char *err, size_t errlen) {
    rosa_load_opts defaults;
    if (!opts) {
        rosa_load_opts_init(&defaults);
        opts = &defaults;
    }
    *out = NULL;
    if (err && errlen) err[0] = 0;
    const rosa__backend *backend = &rosa__cpu_backend;
    if (opts->device && !strcmp(opts->device, "cuda")) {
        backend = rosa__cuda_backend_get();
        if (!backend)
            return rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED,
                             "device 'cuda' is not available: this build has no CUDA backend (configure with -DROSA_CUDA=ON and a CUDA toolkit)");
    } else if (opts->device && strcmp(opts->device, "cpu") != 0) {
        return rosa__err(err, errlen, ROSA_ERR_INVALID, "unknown device '%s' (cpu or cuda)", opts->device);
    }
    int precision = backend == &rosa__cpu_backend ? ROSA_PREC_F32 : ROSA_PREC_BF16;
    if (opts->precision) {
        if (!strcmp(opts->precision, "f32")) precision = ROSA_PREC_F32;
        else if (!strcmp(opts->precision, "bf16")) precision = ROSA_PREC_BF16;
        else return rosa__err(err, errlen, ROSA_ERR_INVALID, "unknown precision '%s' (f32 or bf16)", opts->precision);
    }
    if (opts->threads < 0 || opts->threads > 1024)
        return rosa__err(err, errlen, ROSA_ERR_INVALID, "threads must be in [0, 1024]");
    if (opts->rollback_tokens < -1 || opts->rollback_tokens > ROSA_ROLLBACK_MAX)
        return rosa__err(err, errlen, ROSA_ERR_INVALID, "rollback_tokens must be in [0, %d] (or -1: %d), got %d",
                         ROSA_ROLLBACK_MAX, ROSA_ROLLBACK_DEFAULT, opts->rollback_tokens);
    rosa_model *m = calloc(1, sizeof *m);
    if (!m) return rosa__err(err, errlen, ROSA_ERR_NOMEM, "out of memory");
    rosa__tset_init(&m->base);
    rosa__tset_init(&m->adapter);
    m->backend = backend;
    m->precision = precision;
    m->gpu_memory = opts->gpu_memory;
    /* the horizon: none on a backend that cannot go back (rosa_model_info shows what is in effect) */
    m->rollback = !backend->session_truncate ? 0 : opts->rollback_tokens < 0 ? ROSA_ROLLBACK_DEFAULT : opts->rollback_tokens;
    int rc = rosa__config_load(model_dir, &m->cfg, err, errlen);
    if (rc) goto fail;
    m->C = m->cfg.hidden; m->L = m->cfg.layers; m->Hq = m->cfg.heads; m->Hkv = m->cfg.kv_heads;
    m->D = m->cfg.head_dim; m->F = m->cfg.ffn; m->V = m->cfg.vocab;
    if ((rc = load_base(&m->base, model_dir, err, errlen))) goto fail;

    /* run options: sidecar (adapter dir, else model dir) < explicit options */
    run_opts ro = {-1, -1, -1, -1};
    char sidecar[4200] = "";
    if (opts->adapter && (rc = load_adapter(&m->adapter, opts->adapter, sidecar, sizeof sidecar, err, errlen))) goto fail;
    if (!sidecar[0]) {
        snprintf(sidecar, sizeof sidecar, "%s/rosa_config.json", model_dir);
        if (!is_file(sidecar)) sidecar[0] = 0;
    }
    if (sidecar[0] && (rc = load_sidecar(sidecar, &ro, err, errlen))) goto fail;
    if (opts->window >= 0) ro.window = opts->window;
    if (opts->global_layers >= 0) ro.global_layers = opts->global_layers;
    if (opts->bits_per_route >= 0) ro.bits = opts->bits_per_route;
    if (opts->inject_mode >= 0) ro.mode = opts->inject_mode;
    if (ro.bits == 0 || ro.bits > 8) { rc = rosa__err(err, errlen, ROSA_ERR_INVALID, "bits per route must be in [1, 8]"); goto fail; }
    if (ro.mode > 1) { rc = rosa__err(err, errlen, ROSA_ERR_INVALID, "unknown inject mode %d", ro.mode); goto fail; }
    if (ro.window == 0) { rc = rosa__err(err, errlen, ROSA_ERR_INVALID, "window must be >= 1"); goto fail; }
    if (ro.global_layers > m->L) { rc = rosa__err(err, errlen, ROSA_ERR_INVALID, "global layers (%d) exceeds the %d layers", ro.global_layers, m->L); goto fail; }

    m->layer_window = calloc((size_t)m->L, sizeof *m->layer_window);
    m->layer_rosa_flag = calloc((size_t)m->L, sizeof *m->layer_rosa_flag);
    m->layer = calloc((size_t)m->L, sizeof *m->layer);
    m->inv_freq = malloc((size_t)(m->D / 2) * sizeof *m->inv_freq);
    if (!m->layer_window || !m->layer_rosa_flag || !m->layer || !m->inv_freq) {
        rc = rosa__err(err, errlen, ROSA_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((rc = resolve_layout(m, &ro, opts->window >= 0, sidecar, err, errlen))) goto fail;
    if ((rc = check_adapter_names(m, err, errlen))) goto fail;
    if ((rc = bind_layers(m, &ro, opts->no_rosa, err, errlen))) goto fail;
    /* rotary inverse frequencies and cos/sin scale, one place for both backends */
    rosa__rope_inv_freq(&m->cfg.rope, m->D, m->inv_freq, &m->rope_scale);

    int threads = opts->threads;
    if (threads == 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        threads = nc > 0 ? (int)nc : 1;
    }
    m->pool = rosa__pool_new(threads);
    if (!m->pool) { rc = rosa__err(err, errlen, ROSA_ERR_NOMEM, "cannot start %d threads", threads); goto fail; }
    m->max_chunk = 256;
    fill_info(m);
    if ((rc = m->backend->model_init(m, err, errlen))) goto fail;
    *out = m;
    return 0;
fail:
    rosa_model_free(m);
    return rc;
}

const rosa_model_info *rosa_model_get_info(const rosa_model *m) { return &m->info; }
