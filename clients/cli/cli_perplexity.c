/* cli_perplexity.c: `rosa-cli perplexity`: long-context perplexity of one checkpoint in three
 * attention set-ups, the PG-19 style protocol (non-overlapping sequences of --ctx tokens, every
 * position after the first scored, each sequence in a fresh session):
 *   window  windowed attention only (ROSA weights ignored)
 *   rosa    windowed attention + the ROSA channel
 *   global  full attention in every layer (ROSA ignored): the quadratic reference
 * Prints PPL, tokens/s and the per-session state at the end of a sequence (KV and ROSA bytes),
 * which docs/DEPLOY.md uses for sizing.  Input: --ids F.json (token ids) or --file TEXT, encoded
 * with --tokenizer (default MODEL/tokenizer.json) once the build has a tokenizer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "cli_common.h"
#include "rosa_tokenizer.h"

#define PPL_CHUNK 256 /* tokens fed per call: bounds the logits buffer to [256, vocab] */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int read_text_ids(const char *file, const char *tok_path, int32_t **ids) {
    FILE *f = fopen(file, "rb");
    if (!f) { fprintf(stderr, "rosa-cli perplexity: %s: cannot open\n", file); return -1; }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (!text || fread(text, 1, (size_t)len, f) != (size_t)len) {
        fclose(f);
        free(text);
        fprintf(stderr, "rosa-cli perplexity: %s: cannot read\n", file);
        return -1;
    }
    fclose(f);
    char err[512] = "";
    rosa_tokenizer *tk = NULL;
    int rc = rosa_tokenizer_load(tok_path, &tk, err, sizeof err);
    if (rc) {
        fprintf(stderr, "rosa-cli perplexity: tokenizer %s: %s (token ids work without one: --ids F.json)\n",
                tok_path, err[0] ? err : rosa_strerror(rc));
        free(text);
        return -1;
    }
    size_t n = 0;
    rc = rosa_tokenize(tk, text, (size_t)len, 0, ids, &n);
    rosa_tokenizer_free(tk);
    free(text);
    if (rc || n > INT32_MAX) { fprintf(stderr, "rosa-cli perplexity: tokenize: %s\n", rosa_strerror(rc)); return -1; }
    return (int)n;
}

typedef struct ppl_result {
    double nll, seconds;
    long scored, fed;
    size_t kv_bytes, rosa_bytes; /* at the end of the last sequence */
    int64_t seq_len;
    int window, global_layers, rosa_layers, layers;
} ppl_result;

/* Score the sequences of ctx tokens of ids[0..n) with one loaded model. */
static int score(rosa_model *m, const int32_t *ids, int n, int ctx, ppl_result *r) {
    const rosa_model_info *in = rosa_model_get_info(m);
    int V = in->vocab;
    float *logits = malloc((size_t)PPL_CHUNK * V * sizeof(float));
    if (!logits) return ROSA_ERR_NOMEM;
    int rc = 0;
    double t0 = now_s();
    for (int start = 0; !rc && start + ctx <= n; start += ctx) {
        const int32_t *seq = ids + start;
        rosa_session *s = NULL;
        rc = rosa_session_new(m, &s);
        for (int off = 0; !rc && off < ctx; off += PPL_CHUNK) {
            int k = ctx - off < PPL_CHUNK ? ctx - off : PPL_CHUNK;
            rc = rosa_session_feed(s, seq + off, k, logits);
            for (int i = 0; !rc && i < k; i++) {
                int g = off + i;
                if (g + 1 >= ctx) break;
                const float *row = logits + (size_t)i * V;
                float mx = row[0];
                for (int v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
                double sum = 0;
                for (int v = 0; v < V; v++) sum += exp((double)row[v] - mx);
                r->nll += mx + log(sum) - row[seq[g + 1]];
                r->scored++;
            }
            r->fed += k;
        }
        if (!rc) {
            rosa_session_mem mem;
            rosa_session_memory(s, &mem);
            r->kv_bytes = mem.kv_bytes;
            r->rosa_bytes = mem.rosa_bytes;
            r->seq_len = rosa_session_length(s);
        }
        rosa_session_free(s);
    }
    r->seconds = now_s() - t0;
    free(logits);
    return rc;
}

int cli_perplexity(int argc, char **argv) {
    cli_model_args a = {0};
    rosa_load_opts_init(&a.opts);
    a.opts.rollback_tokens = 0; /* scoring never goes back: no horizon unless asked for */
    const char *file = NULL, *ids_path = NULL, *tok = NULL, *modes = "window,rosa,global";
    long ctx = 16384, max_tokens = 0;
    for (int i = 1; i < argc; i++) {
        int r = cli_parse_model_opt(&a, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) { fprintf(stderr, "rosa-cli perplexity: unknown or incomplete option '%s'\n", o); return 2; }
        i++;
        if (!strcmp(o, "--file")) file = v;
        else if (!strcmp(o, "--ids")) ids_path = v;
        else if (!strcmp(o, "--tokenizer")) tok = v;
        else if (!strcmp(o, "--modes")) modes = v;
        else if (!strcmp(o, "--ctx")) { if ((ctx = cli_parse_long(v, 2, 1 << 24, o)) < 0) return 2; }
        else if (!strcmp(o, "--max-tokens")) { if ((max_tokens = cli_parse_long(v, 0, INT32_MAX, o)) < 0) return 2; }
        else { fprintf(stderr, "rosa-cli perplexity: unknown option '%s'\n", o); return 2; }
    }
    if (!a.model || !!file == !!ids_path) {
        fprintf(stderr, "rosa-cli perplexity: --model and one of --file / --ids are required\n");
        return 2;
    }
    int32_t *ids = NULL;
    int n;
    if (ids_path) {
        n = cli_read_ids(ids_path, &ids);
    } else {
        char def[4200];
        snprintf(def, sizeof def, "%s/tokenizer.json", a.model);
        n = read_text_ids(file, tok ? tok : def, &ids);
    }
    if (n < 0) return 2;
    if (max_tokens && n > max_tokens) n = (int)max_tokens;
    if (n < 2) { fprintf(stderr, "rosa-cli perplexity: need at least 2 tokens\n"); free(ids); return 2; }
    if (ctx > n) ctx = n; /* one (shorter) sequence when the text is shorter than --ctx */
    printf("perplexity: %d tokens, %d sequence(s) of %ld\n", n, n / (int)ctx, ctx);
    printf("%-7s %8s %12s %10s %8s %8s %14s %16s\n", "mode", "window", "ppl", "tokens/s", "scored",
           "rosa_l", "kv_bytes", "rosa_bytes/tok");
    int rc = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", modes);
    for (char *save = NULL, *mode = strtok_r(buf, ",", &save); mode && !rc; mode = strtok_r(NULL, ",", &save)) {
        cli_model_args b = a;
        if (!strcmp(mode, "window")) b.opts.no_rosa = 1;
        else if (!strcmp(mode, "global")) { b.opts.no_rosa = 1; b.opts.global_layers = 4096; }
        else if (strcmp(mode, "rosa")) { fprintf(stderr, "rosa-cli perplexity: mode '%s' is not window, rosa or global\n", mode); rc = 2; break; }
        if (!strcmp(mode, "global")) {
            /* every layer global: the layer count is known only after a first load */
            rosa_model *probe = cli_load_model(&a);
            if (!probe) { rc = 1; break; }
            b.opts.global_layers = rosa_model_get_info(probe)->layers;
            rosa_model_free(probe);
        }
        rosa_model *m = cli_load_model(&b);
        if (!m) { rc = 1; break; }
        const rosa_model_info *in = rosa_model_get_info(m);
        ppl_result r = {0};
        int w = 0;
        for (int l = 0; l < in->layers; l++) w = in->layer_window[l] > w ? in->layer_window[l] : w;
        int e = score(m, ids, n, (int)ctx, &r);
        if (e) {
            fprintf(stderr, "rosa-cli perplexity: %s: %s\n", mode, rosa_strerror(e));
            rc = 1;
        } else {
            char wtxt[32];
            if (w) snprintf(wtxt, sizeof wtxt, "%d", w);
            else snprintf(wtxt, sizeof wtxt, "global");
            printf("%-7s %8s %12.5g %10.1f %8ld %8d %14zu %16.1f\n", mode, wtxt, exp(r.nll / r.scored),
                   r.fed / r.seconds, r.scored, in->n_rosa_layers, r.kv_bytes,
                   r.seq_len ? (double)r.rosa_bytes / r.seq_len : 0.0);
            fflush(stdout);
        }
        rosa_model_free(m);
    }
    free(ids);
    return rc;
}
