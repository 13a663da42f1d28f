/* cli_model.c: `rosa-cli logits`, `generate` and `info`: the engine API from a shell. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rosa_sampler.h"
#include "cli_common.h"

static int write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) {
        if (f) fclose(f);
        fprintf(stderr, "rosa-cli: %s: cannot write\n", path);
        return -1;
    }
    return fclose(f) == 0 ? 0 : -1;
}

int cli_logits(int argc, char **argv) {
    cli_model_args a = {0};
    rosa_load_opts_init(&a.opts);
    const char *ids_path = NULL, *out = NULL, *dest_out = NULL;
    for (int i = 1; i < argc; i++) {
        int r = cli_parse_model_opt(&a, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        if (!strcmp(argv[i], "--prompt-ids") && i + 1 < argc) ids_path = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--dest-out") && i + 1 < argc) dest_out = argv[++i];
        else { fprintf(stderr, "rosa-cli logits: unknown or incomplete option '%s'\n", argv[i]); return 2; }
    }
    if (!ids_path || !out) { fprintf(stderr, "rosa-cli logits: --prompt-ids and --out are required\n"); return 2; }
    int32_t *ids;
    int n = cli_read_ids(ids_path, &ids);
    if (n < 0) return 2;
    rosa_model *m = cli_load_model(&a);
    if (!m) { free(ids); return 1; }
    const rosa_model_info *in = rosa_model_get_info(m);
    rosa_session *s = NULL;
    float *logits = malloc((size_t)(n ? n : 1) * in->vocab * sizeof(float));
    size_t ndest = (size_t)in->n_rosa_layers * in->routes * (size_t)n;
    int32_t *dest = malloc((ndest ? ndest : 1) * sizeof(int32_t));
    int rc = logits && dest ? rosa_session_new(m, &s) : ROSA_ERR_NOMEM;
    if (!rc) {
        rosa_session_trace_dest(s, dest, n);
        rc = rosa_session_feed(s, ids, n, logits);
    }
    if (rc) fprintf(stderr, "rosa-cli logits: %s\n", rosa_strerror(rc));
    else if (write_file(out, logits, (size_t)n * in->vocab * sizeof(float)) ||
             (dest_out && write_file(dest_out, dest, ndest * sizeof(int32_t))))
        rc = -1;
    rosa_session_free(s);
    rosa_model_free(m);
    free(logits);
    free(dest);
    free(ids);
    return rc ? 1 : 0;
}

int cli_generate(int argc, char **argv) {
    cli_model_args a = {0};
    rosa_load_opts_init(&a.opts);
    const char *ids_path = NULL;
    long n_new = 16;
    double temp = 0;
    uint64_t seed = 42;
    for (int i = 1; i < argc; i++) {
        int r = cli_parse_model_opt(&a, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        if (!strcmp(argv[i], "--prompt-ids") && i + 1 < argc) ids_path = argv[++i];
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) { if ((n_new = cli_parse_long(argv[++i], 0, 1 << 24, "-n")) < 0) return 2; }
        else if (!strcmp(argv[i], "--temperature") && i + 1 < argc) {
            char *end;
            temp = strtod(argv[++i], &end);
            if (*end || !(temp >= 0 && temp <= 100)) { fprintf(stderr, "rosa-cli: --temperature must be in [0, 100]\n"); return 2; }
        } else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            long s = cli_parse_long(argv[++i], 0, 1L << 62, "--seed");
            if (s < 0) return 2;
            seed = (uint64_t)s;
        } else { fprintf(stderr, "rosa-cli generate: unknown or incomplete option '%s'\n", argv[i]); return 2; }
    }
    if (!ids_path) { fprintf(stderr, "rosa-cli generate: --prompt-ids is required\n"); return 2; }
    int32_t *ids;
    int n = cli_read_ids(ids_path, &ids);
    if (n < 0) return 2;
    if (n == 0) { fprintf(stderr, "rosa-cli generate: the prompt is empty\n"); free(ids); return 2; }
    rosa_model *m = cli_load_model(&a);
    if (!m) { free(ids); return 1; }
    int V = rosa_model_get_info(m)->vocab;
    rosa_session *s = NULL;
    rosa_sampler_params sp;
    rosa_sampler_params_init(&sp);
    sp.temperature = (float)temp;
    sp.seed = seed;
    rosa_sampler *smp = rosa_sampler_new(&sp, V);
    int rc = smp ? rosa_session_new(m, &s) : ROSA_ERR_NOMEM;
    if (!rc) rc = rosa_session_feed(s, ids, n, NULL);
    for (long k = 0; !rc && k < n_new; k++) {
        int32_t t = rosa_sampler_sample(smp, rosa_session_logits(s));
        rosa_sampler_accept(smp, t, 1);
        printf(k ? " %d" : "%d", t);
        fflush(stdout);
        if (k + 1 < n_new) rc = rosa_session_feed(s, &t, 1, NULL);
    }
    printf("\n");
    if (rc) fprintf(stderr, "rosa-cli generate: %s\n", rosa_strerror(rc));
    rosa_sampler_free(smp);
    rosa_session_free(s);
    rosa_model_free(m);
    free(ids);
    return rc ? 1 : 0;
}

int cli_info(int argc, char **argv) {
    cli_model_args a = {0};
    rosa_load_opts_init(&a.opts);
    for (int i = 1; i < argc; i++) {
        int r = cli_parse_model_opt(&a, argc, argv, &i);
        if (r < 0) return 2;
        if (!r) { fprintf(stderr, "rosa-cli info: unknown option '%s'\n", argv[i]); return 2; }
    }
    rosa_model *m = cli_load_model(&a);
    if (!m) return 1;
    const rosa_model_info *in = rosa_model_get_info(m);
    printf("model: %s\n", a.model);
    printf("vocab %d  hidden %d  layers %d  heads %d/%d (q/kv)  head_dim %d  mlp %d\n", in->vocab, in->hidden,
           in->layers, in->heads, in->kv_heads, in->head_dim, in->ffn);
    printf("rope_theta %g  rms_eps %g  tied_embeddings %d  bos %d  eos %d\n", in->rope_theta, in->rms_eps,
           in->tied_embeddings, in->bos_token, in->eos_token);
    const rosa_rope_info *rp = &in->rope;
    printf("rope: %s theta %g", rp->type, rp->theta);
    if (strcmp(rp->type, "default")) printf(" factor %g", rp->factor);
    if (!strcmp(rp->type, "yarn"))
        printf(" original_max_positions %d attention_factor %.7g beta_fast %g beta_slow %g truncate %s",
               rp->original_max_positions, rp->attention_factor, rp->beta_fast, rp->beta_slow,
               rp->truncate ? "true" : "false");
    printf("\n");
    printf("attention:");
    for (int l = 0; l < in->layers; l++) {
        if (in->layer_window[l]) printf(" %d:window=%d", l, in->layer_window[l]);
        else printf(" %d:global", l);
    }
    printf("\nrosa layers (%d):", in->n_rosa_layers);
    for (int l = 0; l < in->layers; l++) if (in->layer_rosa[l]) printf(" %d", l);
    printf("\n");
    if (in->n_rosa_layers)
        printf("rosa: M=%d bits per route, R=%d routes, K=%d symbols, inject %s\n", in->bits_per_route, in->routes,
               1 << in->bits_per_route, in->inject_mode == ROSA_INJECT_PRE_ATTN ? "pre_attn" : "post_attn");
    printf("weights: %.2f MiB (%s)  backend %s  threads %d  rollback_tokens %d\n", in->weight_bytes / 1048576.0,
           in->weight_dtype, in->backend, in->threads, in->rollback_tokens);
    rosa_model_free(m);
    return 0;
}
