/* cli_common.c: model/run option parsing and prompt-id files for rosa-cli. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"

long cli_parse_long(const char *s, long lo, long hi, const char *what) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "rosa-cli: %s must be an integer in [%ld, %ld] (got '%s')\n", what, lo, hi, s ? s : "");
        return -1;
    }
    return v;
}

int cli_parse_model_opt(cli_model_args *a, int argc, char **argv, int *i) {
    const char *o = argv[*i];
    const char *val = *i + 1 < argc ? argv[*i + 1] : NULL;
#define NEED_VAL                                                              \
    if (!val) { fprintf(stderr, "rosa-cli: %s needs a value\n", o); return -1; } \
    (*i)++;
    if (!strcmp(o, "--model")) { NEED_VAL; a->model = val; return 1; }
    if (!strcmp(o, "--adapter")) { NEED_VAL; a->opts.adapter = val; return 1; }
    char err[256];
    int r = rosa_load_opts_arg(&a->opts, argc, argv, i, err, sizeof err);
    if (r < 0) fprintf(stderr, "rosa-cli: %s\n", err);
    return r;
#undef NEED_VAL
}

rosa_model *cli_load_model(const cli_model_args *a) {
    if (!a->model) {
        fprintf(stderr, "rosa-cli: --model DIR is required\n");
        return NULL;
    }
    char err[1024];
    rosa_model *m = NULL;
    int rc = rosa_model_load(a->model, &a->opts, &m, err, sizeof err);
    if (rc) {
        fprintf(stderr, "rosa-cli: cannot load model: %s\n", err[0] ? err : rosa_strerror(rc));
        return NULL;
    }
    return m;
}

int cli_read_ids(const char *path, int32_t **ids) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "rosa-cli: %s: cannot open\n", path); return -1; }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) {
            if (cap >= (256u << 20)) { free(buf); buf = NULL; break; }
            char *nb = realloc(buf, cap *= 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
        }
    }
    fclose(f);
    if (!buf) { fprintf(stderr, "rosa-cli: %s: too large or out of memory\n", path); return -1; }
    cJSON *j = cJSON_ParseWithLength(buf, len);
    free(buf);
    if (!cJSON_IsArray(j)) {
        cJSON_Delete(j);
        fprintf(stderr, "rosa-cli: %s: expected a JSON array of token ids\n", path);
        return -1;
    }
    int n = cJSON_GetArraySize(j);
    *ids = malloc((size_t)(n ? n : 1) * sizeof **ids);
    int i = 0;
    for (cJSON *e = j->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e) || floor(e->valuedouble) != e->valuedouble || e->valuedouble < 0 || e->valuedouble > INT32_MAX) {
            fprintf(stderr, "rosa-cli: %s: element %d is not a token id\n", path, i);
            cJSON_Delete(j);
            free(*ids);
            return -1;
        }
        (*ids)[i] = (int32_t)e->valuedouble;
    }
    cJSON_Delete(j);
    return n;
}
