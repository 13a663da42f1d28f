/* rosa.h: the public engine API of rosa-serve.
 *
 * A rosa_model is a loaded Qwen3 checkpoint (+ optional ROSA adapter) bound to one backend.
 * A rosa_session is one token history: its attention caches and its per-(layer, route) ROSA
 * suffix automata.  Feed tokens in any chunking; the result equals one whole-sequence pass.
 *
 * Threading: a model and its sessions are driven from one thread at a time (the server's
 * engine thread); the backend parallelises internally over its own worker threads.
 * Every function returning int returns 0 (ROSA_OK) or a negative rosa_err. */
#ifndef ROSA_H
#define ROSA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum rosa_err {
    ROSA_OK = 0,
    ROSA_ERR_IO = -1,          /* a file could not be opened, read or mapped */
    ROSA_ERR_FORMAT = -2,      /* a file is malformed or inconsistent */
    ROSA_ERR_UNSUPPORTED = -3, /* valid but not supported (dtype, architecture, option) */
    ROSA_ERR_NOMEM = -4,       /* allocation failed */
    ROSA_ERR_INVALID = -5,     /* bad argument (token id out of range, bad option value) */
    ROSA_ERR_LIMIT = -6,       /* a configured size limit would be exceeded */
    ROSA_ERR_BACKEND = -7,     /* the compute backend failed */
    ROSA_ERR_MISMATCH = -8,    /* a file made for another model or run options (session files) */
};

/* Human-readable name of an error code; never NULL. */
const char *rosa_strerror(int err);

typedef enum { ROSA_INJECT_POST_ATTN = 0, ROSA_INJECT_PRE_ATTN = 1 } rosa_inject_mode;

/* Load options.  Fields left at -1 / NULL fall back to the adapter's rosa_config.json sidecar,
 * then to config.json and the ROSA-SPEC defaults (M = 4, post_attn). */
typedef struct rosa_load_opts {
    const char *adapter;   /* rosa_adapters.pt or *.safetensors with ROSA tensors; NULL: none
                              (ROSA tensors merged into the base checkpoint are still used) */
    int window;            /* the window of the layers that are windowed (by config.json, or by
                              global_layers); -1: unset.  A model with no windowed layer
                              needs global_layers as well (ROSA_ERR_INVALID otherwise). */
    int global_layers;     /* layers 0..global_layers-1 global, the rest windowed; -1: unset */
    int bits_per_route;    /* M; -1: unset */
    int inject_mode;       /* rosa_inject_mode; -1: unset */
    int threads;           /* CPU worker threads; 0: one per online core */
    const char *device;    /* "cpu" (default) or "cuda" (builds with the CUDA backend) */
    int no_rosa;           /* 1: ignore all ROSA weights (window-only baseline) */
    const char *precision; /* "f32" or "bf16"; NULL: the device's default (cpu: f32, cuda: bf16).
                              CPU bf16: matrix-product inputs rounded to bf16 (AMX tiles where
                              the CPU has them) and the KV cache held in bf16 (half the bytes;
                              attention sums in float32), ROSA route projections stay float32;
                              it agrees with f32 rather than matching it. */
    size_t gpu_memory;     /* cuda: bytes of device memory for weights + KV pool + scratch;
                              0: 90% of the free device memory at load */
    int rollback_tokens;   /* rollback horizon H of rosa_session_truncate: sessions keep what
                              undoing their last H tokens needs; -1: unset (2048), 0: none,
                              at most ROSA_ROLLBACK_MAX.  Not part of a session file's
                              fingerprint: a file saved under one H restores under another. */
} rosa_load_opts;

#define ROSA_ROLLBACK_DEFAULT 2048
#define ROSA_ROLLBACK_MAX (1 << 20)

void rosa_load_opts_init(rosa_load_opts *o);

/* Run options on a command line: one vocabulary for every program (rosa-cli, rosa-server).
 *   --window N  --global-layers N  --rosa-bits M  --rosa-mode post_attn|pre_attn  --no-rosa
 *   --threads N  --device cpu|cuda  --precision f32|bf16  --gpu-memory GIB  --rollback-tokens N
 * rosa_load_opts_arg looks at argv[*i]: a run option is stored in o, *i is advanced past its
 * value, and 1 is returned; 0 when argv[*i] is not a run option; -1 with a message in err for a
 * missing or malformed value.  rosa_load_opts_help returns their --help lines, in that order. */
int rosa_load_opts_arg(rosa_load_opts *o, int argc, char **argv, int *i, char *err,
                       size_t errlen);
const char *rosa_load_opts_help(void);

/* Devices of a kind usable by this build on this machine: "cpu" 1, "cuda" the number of CUDA
 * devices (0 without the CUDA backend or without a device), anything else 0. */
int rosa_device_count(const char *device);

typedef struct rosa_model rosa_model;
typedef struct rosa_session rosa_session;

/* The rotary embedding in effect, as transformers reads config.json: "rope_parameters"
 * (transformers >= 5) or "rope_theta" + "rope_scaling" (older). */
typedef struct rosa_rope_info {
    const char *type;          /* "default", "linear" or "yarn" */
    float theta;               /* rope_theta */
    float factor;              /* linear, yarn: the scaling factor; 1 for default */
    int original_max_positions; /* yarn: original_max_position_embeddings; 0 otherwise */
    float attention_factor;    /* yarn: scale of cos and sin; 1 otherwise */
    float beta_fast, beta_slow; /* yarn (defaults 32 and 1); 0 otherwise */
    int truncate;              /* yarn: correction range rounded to whole dimensions */
} rosa_rope_info;

/* What a loaded model is.  Arrays point into the model and live as long as it. */
typedef struct rosa_model_info {
    int vocab, hidden, layers, heads, kv_heads, head_dim, ffn;
    float rope_theta, rms_eps; /* rope_theta: the same as rope.theta */
    rosa_rope_info rope;
    int tied_embeddings;
    int bos_token, eos_token;  /* -1 when absent */
    int max_positions;
    const int *layer_window;   /* [layers]: 0 = global attention, else the window W */
    const int *layer_rosa;     /* [layers]: 1 if the layer carries ROSA weights */
    int n_rosa_layers;
    int bits_per_route;        /* M */
    int routes;                /* R = hidden / M (0 without ROSA) */
    int inject_mode;           /* rosa_inject_mode */
    size_t weight_bytes;       /* bytes of all weights as stored (base + adapter) */
    const char *weight_dtype;  /* "bf16", "f16", "f32" or "mixed" */
    const char *backend;       /* "cpu" or "cuda" */
    const char *precision;     /* "f32" or "bf16": activations, GEMM inputs, KV cache */
    int threads;
    int rollback_tokens;       /* the rollback horizon H in effect (0 where the backend cannot
                                  truncate sessions: CUDA today) */
} rosa_model_info;

/* Load a Hugging Face Qwen3 directory (config.json + model.safetensors or sharded index).
 * On failure returns < 0 and writes one message naming the file / tensor into err. */
int rosa_model_load(const char *model_dir, const rosa_load_opts *opts, rosa_model **out,
                    char *err, size_t errlen);
void rosa_model_free(rosa_model *m);
const rosa_model_info *rosa_model_get_info(const rosa_model *m);

int rosa_session_new(rosa_model *m, rosa_session **out);
void rosa_session_free(rosa_session *s);

/* An independent deep copy of s in *out: its attention caches, every ROSA route's automaton and
 * run state, its length and last logits (not its destination trace).  Feeding either afterwards
 * gives exactly what feeding s alone would have (bit-identical logits on the CPU backend); either
 * may be fed or freed without the other.  The copy's rollback horizon (rosa_session_truncate)
 * starts at the fork point.  ROSA_ERR_INVALID for a session a failed feed left broken;
 * ROSA_ERR_UNSUPPORTED on a backend that cannot copy its caches (CUDA today); ROSA_ERR_NOMEM.
 * On error *out is NULL and s is unchanged. */
int rosa_session_fork(rosa_session *s, rosa_session **out);

/* Session files (format: docs/SESSIONS.md).  rosa_session_save writes everything
 * rosa_session_fork copies (not the destination trace) to `path`, through `path`.tmp renamed
 * over it once complete, so a failed save leaves any earlier file at `path` intact.  The file is
 * bound to the model: a fingerprint of its config, weight shapes (and a sample of their bytes)
 * and run options (window, global layers, bits per route, inject mode, precision, backend).
 * rosa_session_restore reads it into a new session *out of m that continues exactly as the saved
 * one would have (bit-identical logits on the CPU backend).  Both stream sequentially (large
 * writes and reads, a checksum over every byte).  Errors, with *out NULL and nothing leaked:
 *   ROSA_ERR_IO           the file cannot be created, written (a full disk), opened or read
 *   ROSA_ERR_FORMAT       not a session file (magic), truncated, a count or field out of range,
 *                         inconsistent with the header, or a checksum mismatch (corruption)
 *   ROSA_ERR_UNSUPPORTED  a newer format version; a backend without host caches (CUDA today)
 *   ROSA_ERR_MISMATCH     saved from another model, or the same one with other run options
 *   ROSA_ERR_INVALID      save of a broken session; NULL arguments
 *   ROSA_ERR_NOMEM
 * The checksum detects corruption, not a forged file; so besides bounding every count and
 * scalar, restore checks the structure of every ROSA route it reads (ids, suffix links to
 * strictly shorter states, edge blocks, maps, cells, runs: rosa_sam_check.c) and refuses a
 * structurally invalid file with ROSA_ERR_FORMAT even when its checksum matches.  A forged
 * file that is well-formed can only make retrievals wrong (never an out-of-bounds access or an
 * endless loop); files from untrusted writers still give untrusted results. */
int rosa_session_save(rosa_session *s, const char *path);
int rosa_session_restore(rosa_model *m, const char *path, rosa_session **out);

/* Exact rollback: s becomes the session of its first n tokens; feeding tokens afterwards gives
 * exactly what a fresh session fed the same tokens gives (logits, ROSA destinations;
 * bit-identical on the CPU backend for the same chunks).  Possible for
 * length - rollback_tokens <= n <= length (the load option's horizon H, counted back from the
 * newest token the session has reached, also across truncates: going back never extends it),
 * but never before the point a session was forked or restored at (its horizon starts there).
 * The last logits are dropped (rosa_session_logits NULL) until the next feed, unless
 * n == length (nothing changes).  A traced session (rosa_session_trace_dest) keeps tracing:
 * positions n.. read -1 again until refed.  ROSA_ERR_LIMIT beyond the horizon (rebuild the
 * session instead), ROSA_ERR_INVALID for n < 0, n > length or a broken session,
 * ROSA_ERR_UNSUPPORTED on a backend that cannot (CUDA today); on error s is unchanged. */
int rosa_session_truncate(rosa_session *s, int64_t n);

/* Process n tokens.  logits: NULL, or [n, vocab] floats to receive the logits of every fed
 * position.  The logits after the last fed token are always kept (rosa_session_logits). */
int rosa_session_feed(rosa_session *s, const int32_t *tokens, int n, float *logits);

/* Logits after the last fed token ([vocab]), or NULL before any token. */
const float *rosa_session_logits(const rosa_session *s);
int64_t rosa_session_length(const rosa_session *s);

/* Advance n sessions by one token each in one backend call (continuous batching).  The sessions
 * must be distinct and belong to one model.  logits: NULL or [n, vocab]. */
int rosa_step_batch(rosa_session *const *ss, const int32_t *tokens, int n, float *logits);

/* rosa_step_batch, then the next token of each session chosen by its sampler smp[i]
 * (rosa_sampler.h: its parameters, RNG and counts; the choice is not accepted into it: call
 * rosa_sampler_accept as after rosa_sampler_sample).  next: [n] ids; logprobs: NULL or [n] the
 * model log-probabilities of the chosen tokens.  Where the backend can (CUDA: samplers without
 * logit_bias and penalties, logprobs NULL) the choice is made on the device and only the ids
 * cross the bus; otherwise on the host with rosa_sampler_sample, which it equals there.  Either
 * way rosa_session_logits returns NULL for these sessions until their next feed or step. */
struct rosa_sampler;
int rosa_step_batch_sample(rosa_session *const *ss, const int32_t *tokens, int n,
                           struct rosa_sampler *const *smp, int32_t *next, float *logprobs);

/* Record ROSA destinations of positions 0..T-1 into buf laid out [n_rosa_layers, R, T]
 * (the golden dest.i32 layout), -1 for none.  buf must hold n_rosa_layers*R*T int32. */
void rosa_session_trace_dest(rosa_session *s, int32_t *buf, int64_t T);

typedef struct rosa_session_mem {
    size_t kv_bytes;   /* attention caches allocated for this session */
    size_t rosa_bytes; /* ROSA automata, run tables (allocated bytes) */
    int64_t rosa_runs; /* total k-runs over all (layer, route) */
    size_t rollback_bytes; /* of kv_bytes + rosa_bytes, what the rollback horizon costs: extra
                              ring slots of windowed layers and the automata's undo logs */
} rosa_session_mem;
void rosa_session_memory(const rosa_session *s, rosa_session_mem *out);

#ifdef __cplusplus
}
#endif
#endif
