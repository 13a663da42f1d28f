/* cli_tokenize.c: `rosa-cli tokenize` and `rosa-cli detokenize`, thin wrappers over the
 * engine tokenizer that move bytes exactly: text in from an argument or standard input
 * (`-`, read as binary), ids out as decimal numbers; decoded text out as raw bytes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rosa.h"
#include "rosa_tokenizer.h"

static char *read_all(FILE *f, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    if (!b) return NULL;
    for (;;) {
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (n < cap) {
            if (ferror(f)) {
                free(b);
                return NULL;
            }
            break;
        }
        cap *= 2;
        char *q = realloc(b, cap + 1);
        if (!q) {
            free(b);
            return NULL;
        }
        b = q;
    }
    b[n] = 0;
    *len = n;
    return b;
}

static rosa_tokenizer *load(const char *path, const char *cmd) {
    if (!path) {
        fprintf(stderr, "rosa-cli %s: --tokenizer FILE is required\n", cmd);
        return NULL;
    }
    char err[512];
    rosa_tokenizer *tk = NULL;
    int rc = rosa_tokenizer_load(path, &tk, err, sizeof err);
    if (rc) {
        fprintf(stderr, "rosa-cli %s: %s (%s)\n", cmd, err, rosa_strerror(rc));
        return NULL;
    }
    return tk;
}

int cli_tokenize(int argc, char **argv) {
    const char *path = NULL, *text = NULL;
    int special = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) path = argv[++i];
        else if (!strcmp(argv[i], "--special")) special = 1;
        else if (!text) text = argv[i];
        else {
            fprintf(stderr, "usage: rosa-cli tokenize --tokenizer FILE [--special] TEXT|-\n");
            return 2;
        }
    }
    if (!text) {
        fprintf(stderr, "usage: rosa-cli tokenize --tokenizer FILE [--special] TEXT|-\n");
        return 2;
    }
    rosa_tokenizer *tk = load(path, "tokenize");
    if (!tk) return 1;
    char *buf = NULL;
    size_t len;
    if (!strcmp(text, "-")) {
        buf = read_all(stdin, &len);
        if (!buf) {
            fprintf(stderr, "rosa-cli tokenize: cannot read standard input\n");
            rosa_tokenizer_free(tk);
            return 1;
        }
        text = buf;
    } else {
        len = strlen(text);
    }
    int32_t *ids;
    size_t n;
    int rc = rosa_tokenize(tk, text, len, special, &ids, &n);
    if (rc) {
        fprintf(stderr, "rosa-cli tokenize: %s\n", rosa_strerror(rc));
    } else {
        for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", (int)ids[i]);
        printf("\n");
        free(ids);
    }
    free(buf);
    rosa_tokenizer_free(tk);
    return rc ? 1 : 0;
}

/* Parse ids separated by spaces, commas or brackets (so a JSON array works too). */
static int parse_ids(const char *s, int32_t **ids, size_t *n, size_t *cap) {
    while (*s) {
        if (strchr(" \t\r\n,[]", *s)) {
            s++;
            continue;
        }
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < INT32_MIN || v > INT32_MAX) {
            fprintf(stderr, "rosa-cli detokenize: not an id: '%.20s'\n", s);
            return -1;
        }
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 256;
            int32_t *p = realloc(*ids, *cap * sizeof *p);
            if (!p) return -1;
            *ids = p;
        }
        (*ids)[(*n)++] = (int32_t)v;
        s = end;
    }
    return 0;
}

int cli_detokenize(int argc, char **argv) {
    const char *path = NULL;
    int skip = 0, from_stdin = 0, any = 0;
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (int i = 1; i < argc && !rc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) path = argv[++i];
        else if (!strcmp(argv[i], "--skip-special")) skip = 1;
        else if (!strcmp(argv[i], "-")) from_stdin = any = 1;
        else {
            any = 1;
            rc = parse_ids(argv[i], &ids, &n, &cap);
        }
    }
    if (!rc && from_stdin) {
        size_t len;
        char *buf = read_all(stdin, &len);
        rc = buf ? parse_ids(buf, &ids, &n, &cap) : -1;
        free(buf);
    }
    if (rc || !any) {
        if (!any) fprintf(stderr, "usage: rosa-cli detokenize --tokenizer FILE [--skip-special] ID...|-\n");
        free(ids);
        return 2;
    }
    rosa_tokenizer *tk = load(path, "detokenize");
    if (!tk) {
        free(ids);
        return 1;
    }
    char *text;
    size_t len;
    rc = rosa_detokenize(tk, ids, n, skip, &text, &len);
    if (rc) {
        int v = rosa_tokenizer_vocab_size(tk);
        for (size_t i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= v) {
                fprintf(stderr, "rosa-cli detokenize: id %d is out of range [0, %d)\n", (int)ids[i], v);
                break;
            }
        fprintf(stderr, "rosa-cli detokenize: %s\n", rosa_strerror(rc));
    } else {
        fwrite(text, 1, len, stdout);
        free(text);
    }
    free(ids);
    rosa_tokenizer_free(tk);
    return rc ? 1 : 0;
}
