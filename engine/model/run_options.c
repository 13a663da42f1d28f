/* run_options.c: the run options of the command line, one vocabulary for every program.
 *
 * rosa-cli and rosa-server (and the Docker entrypoint's environment names) spell the options
 * that shape a loaded model the same way, because both parse them here: --window,
 * --global-layers, --rosa-bits, --rosa-mode, --no-rosa, --threads, --device, --precision,
 * --gpu-memory, --rollback-tokens.  The help text lists them in that order.  Values are checked for form and
 * range here; whether they fit the checkpoint is decided by rosa_model_load. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rosa.h"

const char *rosa_load_opts_help(void) {
    return "  --window N               attention window of the windowed layers (those of\n"
           "                           config.json, or of --global-layers); a model with\n"
           "                           no windowed layer needs --global-layers as well\n"
           "  --global-layers N        layers 0..N-1 global, the rest windowed with the\n"
           "                           window of --window, else config.json's sliding_window\n"
           "  --rosa-bits M            ROSA bits per route (1..8)\n"
           "  --rosa-mode MODE         ROSA injection: post_attn | pre_attn\n"
           "  --no-rosa                ignore ROSA weights (window-only baseline)\n"
           "  --threads N              engine CPU threads (default: all cores)\n"
           "  --device DEV             cpu (default) or cuda\n"
           "  --precision P            f32 | bf16 (default: cpu f32, exact; cuda bf16)\n"
           "  --gpu-memory GIB         cuda: device memory for weights + KV pool (default 90%\n"
           "                           of the free memory)\n"
           "  --rollback-tokens N      tokens a session can be rolled back (default 2048;\n"
           "                           0: none); costs N KV slots per windowed layer\n";
}

static int int_value(const char *flag, const char *v, long lo, long hi, int *out, char *err,
                     size_t errlen) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        snprintf(err, errlen, "%s expects an integer in [%ld, %ld], got '%s'", flag, lo, hi, v);
        return -1;
    }
    *out = (int)x;
    return 0;
}

int rosa_load_opts_arg(rosa_load_opts *o, int argc, char **argv, int *i, char *err,
                       size_t errlen) {
    const char *a = argv[*i];
    if (!strcmp(a, "--no-rosa")) {
        o->no_rosa = 1;
        return 1;
    }
    /* the server's spellings before one vocabulary: refused with the new name, not ignored */
    if (!strcmp(a, "--bits-per-route") || !strcmp(a, "--inject-mode")) {
        snprintf(err, errlen, "%s was renamed: use %s", a,
                 a[2] == 'b' ? "--rosa-bits" : "--rosa-mode");
        return -1;
    }
    static const char *const with_value[] = {"--window", "--global-layers", "--rosa-bits",
                                             "--rosa-mode", "--threads", "--device",
                                             "--precision", "--gpu-memory", "--rollback-tokens"};
    int known = 0;
    for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++)
        if (!strcmp(a, with_value[k])) known = 1;
    if (!known) return 0;
    if (*i + 1 >= argc) {
        snprintf(err, errlen, "%s needs a value", a);
        return -1;
    }
    const char *v = argv[++*i];
    if (!strcmp(a, "--window")) return int_value(a, v, 1, 1L << 30, &o->window, err, errlen) ? -1 : 1;
    if (!strcmp(a, "--global-layers"))
        return int_value(a, v, 0, 4096, &o->global_layers, err, errlen) ? -1 : 1;
    if (!strcmp(a, "--rosa-bits"))
        return int_value(a, v, 1, 8, &o->bits_per_route, err, errlen) ? -1 : 1;
    if (!strcmp(a, "--threads")) return int_value(a, v, 0, 1024, &o->threads, err, errlen) ? -1 : 1;
    if (!strcmp(a, "--rollback-tokens"))
        return int_value(a, v, 0, ROSA_ROLLBACK_MAX, &o->rollback_tokens, err, errlen) ? -1 : 1;
    if (!strcmp(a, "--rosa-mode")) {
        if (!strcmp(v, "post_attn")) o->inject_mode = ROSA_INJECT_POST_ATTN;
        else if (!strcmp(v, "pre_attn")) o->inject_mode = ROSA_INJECT_PRE_ATTN;
        else {
            snprintf(err, errlen, "--rosa-mode is post_attn or pre_attn, got '%s'", v);
            return -1;
        }
        return 1;
    }
    if (!strcmp(a, "--device")) {
        if (strcmp(v, "cpu") && strcmp(v, "cuda")) {
            snprintf(err, errlen, "--device is cpu or cuda, got '%s'", v);
            return -1;
        }
        o->device = v;
        return 1;
    }
    if (!strcmp(a, "--precision")) {
        if (strcmp(v, "f32") && strcmp(v, "bf16")) {
            snprintf(err, errlen, "--precision is f32 or bf16, got '%s'", v);
            return -1;
        }
        o->precision = v;
        return 1;
    }
    /* --gpu-memory GIB */
    char *end;
    errno = 0;
    double g = strtod(v, &end);
    if (errno || end == v || *end || !(g > 0) || g > 1e6) {
        snprintf(err, errlen, "--gpu-memory takes GiB (> 0), got '%s'", v);
        return -1;
    }
    o->gpu_memory = (size_t)(g * 1073741824.0);
    return 1;
}
