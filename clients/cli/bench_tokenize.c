/* bench_tokenize.c: `rosa-cli bench tokenize`: encoding throughput on one core.
 *
 * The text is a file (--text) or a generated mix (--mb N, deterministic): English prose, Chinese,
 * code, numbers, emoji, whitespace runs and CRLF lines, roughly the mix a chat server sees.
 * --write-text FILE saves it, so tools/bench_tokenize.sh can give Hugging Face the same bytes.
 * One rosa_tokenize call over the whole text per repetition (--lines: one call per line, as a
 * server sees many short texts); the best of --repeat runs is reported. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "rosa.h"
#include "rosa_tokenizer.h"

static const char *const words[] = {
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on", "not",
    "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had", "they", "you",
    "were", "their", "one", "all", "we", "can", "her", "has", "there", "been", "if", "more", "when", "will",
    "would", "who", "so", "no", "model", "server", "token", "language", "attention", "memory", "request",
    "response", "automaton", "suffix", "window", "context", "training", "inference", "throughput", "latency",
    "performance", "tokenizer", "encoding", "decoding", "Unicode", "character", "sequence", "probability",
    "distribution", "function", "variable", "structure", "algorithm", "implementation", "experiment",
    "government", "university", "history", "information", "development", "international", "community",
    "environment", "particularly", "approximately", "nevertheless", "don't", "it's", "we're", "they've",
    "I'm", "you'll", "she'd", "Hello", "World", "Paris", "London", "January", "Monday", "OpenAI", "Qwen",
};

static const char *const chinese[] = {
    "人工智能是计算机科学的一个分支，", "它企图了解智能的实质，", "并生产出一种新的能以人类智能相似的方式做出反应的智能机器。",
    "自然语言处理是人工智能的重要方向之一。", "今天天气很好，我们去公园散步吧！", "这个模型的推理速度非常快。",
    "北京是中华人民共和国的首都。", "请问你叫什么名字？", "我们需要更多的数据来训练模型。",
};

static const char *const code[] = {
    "int main(int argc, char **argv) {\n    return 0;\n}\n",
    "for (size_t i = 0; i < n; i++) {\n        sum += a[i] * b[i];\n    }\n",
    "def encode(self, text: str) -> list[int]:\n    return self._model.encode(text)\n",
    "if (rc != 0) {\n\tfprintf(stderr, \"error: %s\\n\", rosa_strerror(rc));\n\treturn rc;\n}\n",
    "const result = await fetch(`/v1/chat/completions`, { method: 'POST' });\n",
    "    x = np.zeros((batch_size, seq_len), dtype=np.float32)\n",
    "SELECT id, name FROM users WHERE created_at > '2024-01-01';\n",
    "{\"model\": \"qwen3\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n",
};

static const char *const extras[] = {
    "😀", "🚀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "café", "naïve", "Ångström", "Привет, мир!", "こんにちは世界",
    "안녕하세요", "مرحبا بالعالم", "  \t  ", "\r\n", "\n\n", "    ", "...", "!!!", "¿Qué?", "ß", "∑ x² ≤ π",
};

static uint64_t rng;
static uint32_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}
#define PICK(a) (a[next_rand() % (sizeof a / sizeof a[0])])

typedef struct {
    char *p;
    size_t n, cap;
} sb;

static int put(sb *b, const char *s) {
    size_t l = strlen(s);
    if (b->n + l + 1 > b->cap) {
        size_t c = b->cap ? b->cap * 2 : 1 << 20;
        while (c < b->n + l + 1) c *= 2;
        char *q = realloc(b->p, c);
        if (!q) return -1;
        b->p = q;
        b->cap = c;
    }
    memcpy(b->p + b->n, s, l + 1);
    b->n += l;
    return 0;
}

static char *generate(size_t bytes, size_t *len) {
    sb b = {0};
    rng = 0x9E3779B97F4A7C15ull;
    char num[64];
    while (b.n < bytes) {
        uint32_t r = next_rand() % 100;
        int rc = 0;
        if (r < 60) { /* an English sentence */
            int nw = 5 + (int)(next_rand() % 20);
            for (int i = 0; i < nw && !rc; i++) {
                const char *w = PICK(words);
                if (i == 0) {
                    char cap[64];
                    snprintf(cap, sizeof cap, "%s", w);
                    if (cap[0] >= 'a' && cap[0] <= 'z') cap[0] = (char)(cap[0] - 32);
                    rc = put(&b, cap);
                } else {
                    rc = put(&b, " ");
                    if (!rc) rc = put(&b, w);
                }
                if (!rc && next_rand() % 12 == 0) rc = put(&b, ",");
            }
            if (!rc) rc = put(&b, next_rand() % 8 ? ". " : "? ");
        } else if (r < 75) {
            rc = put(&b, PICK(chinese));
        } else if (r < 88) {
            rc = put(&b, PICK(code));
        } else if (r < 94) {
            snprintf(num, sizeof num, " %u.%02u%% of %u,%03u in %u ", next_rand() % 100, next_rand() % 100,
                     next_rand() % 1000, next_rand() % 1000, 1900 + next_rand() % 130);
            rc = put(&b, num);
        } else {
            rc = put(&b, PICK(extras));
        }
        if (!rc && next_rand() % 10 == 0) rc = put(&b, "\n");
        if (rc) {
            free(b.p);
            return NULL;
        }
    }
    *len = b.n;
    return b.p;
}

/* Encode the text (one call, or one per line); returns 0 or a rosa_err, the token count in *ntok. */
static int encode_all(const rosa_tokenizer *tk, const char *text, size_t len, int lines, size_t *ntok) {
    *ntok = 0;
    size_t i = 0;
    while (i < len || (i == 0 && len == 0)) {
        size_t j = len;
        if (lines) {
            const char *nl = memchr(text + i, '\n', len - i);
            if (nl) j = (size_t)(nl - text) + 1;
        }
        int32_t *ids;
        size_t n;
        int rc = rosa_tokenize(tk, text + i, j - i, 0, &ids, &n);
        if (rc) return rc;
        free(ids);
        *ntok += n;
        i = j;
        if (len == 0) break;
    }
    return 0;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cli_bench_tokenize(int argc, char **argv) {
    const char *path = NULL, *text_file = NULL, *write_file = NULL;
    double mb = 8;
    int repeat = 3, lines = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) path = argv[++i];
        else if (!strcmp(argv[i], "--text") && i + 1 < argc) text_file = argv[++i];
        else if (!strcmp(argv[i], "--write-text") && i + 1 < argc) write_file = argv[++i];
        else if (!strcmp(argv[i], "--mb") && i + 1 < argc) mb = atof(argv[++i]);
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--lines")) lines = 1;
        else {
            fprintf(stderr, "usage: rosa-cli bench tokenize --tokenizer F [--text F | --mb N] [--repeat R] "
                            "[--lines] [--write-text F]\n");
            return 2;
        }
    }
    if (!path || !(mb > 0) || repeat < 1) {
        fprintf(stderr, "rosa-cli bench tokenize: --tokenizer FILE is required (and --mb > 0, --repeat >= 1)\n");
        return 2;
    }
    char err[512];
    rosa_tokenizer *tk = NULL;
    int rc = rosa_tokenizer_load(path, &tk, err, sizeof err);
    if (rc) {
        fprintf(stderr, "rosa-cli bench tokenize: %s\n", err);
        return 1;
    }
    char *text = NULL;
    size_t len = 0;
    if (text_file) {
        FILE *f = fopen(text_file, "rb");
        if (f) {
            fseek(f, 0, SEEK_END);
            long l = ftell(f);
            fseek(f, 0, SEEK_SET);
            text = l >= 0 ? malloc((size_t)l + 1) : NULL;
            if (text && fread(text, 1, (size_t)l, f) == (size_t)l) len = (size_t)l;
            else {
                free(text);
                text = NULL;
            }
            fclose(f);
        }
    } else {
        text = generate((size_t)(mb * 1e6), &len);
    }
    if (!text) {
        fprintf(stderr, "rosa-cli bench tokenize: cannot %s the text\n", text_file ? "read" : "generate");
        rosa_tokenizer_free(tk);
        return 1;
    }
    if (write_file) {
        FILE *f = fopen(write_file, "wb");
        if (!f || fwrite(text, 1, len, f) != len) {
            fprintf(stderr, "rosa-cli bench tokenize: cannot write %s\n", write_file);
            if (f) fclose(f);
            free(text);
            rosa_tokenizer_free(tk);
            return 1;
        }
        fclose(f);
    }
    double best = 1e30;
    size_t ntok = 0;
    for (int r = 0; r < repeat && !rc; r++) {
        double t0 = now();
        rc = encode_all(tk, text, len, lines, &ntok);
        double t = now() - t0;
        if (t < best) best = t;
    }
    if (rc) fprintf(stderr, "rosa-cli bench tokenize: %s\n", rosa_strerror(rc));
    else
        printf("bench tokenize impl=%s bytes=%zu tokens=%zu seconds=%.4f mb_per_s=%.2f\n",
               lines ? "rosa-lines" : "rosa", len, ntok, best, (double)len / 1e6 / best);
    free(text);
    rosa_tokenizer_free(tk);
    return rc ? 1 : 0;
}
