/* session_file.c: rosa_session_save / rosa_session_restore, a session as one file.
 *
 * Why its own file: the format (docs/SESSIONS.md) and its checks.  Layout, little-endian:
 *   header (64 bytes): magic "ROSASESS", version, header bytes, model fingerprint, pos,
 *     has_logits, V, L, Hkv*D, route count, route header words, 0
 *   last logits: V floats when has_logits
 *   per layer: filled slots (u64, must equal what pos implies: min(pos, W) or pos), K then V
 *     [slots, Hkv*D] floats (a bf16 cache, --precision bf16 on the CPU, widened exactly and
 *     rounded back on restore), position p in slot p % W; the session's ring of W + H slots
 *     (rollback horizon H) is not in the file, which is why H is not in the fingerprint
 *   per route: 22 header words (rosa_sam_image.c), then its six arrays' used bytes (each
 *     route is checked structurally once read, rosa__route_check: a forged file with a valid
 *     checksum is refused too)
 *   trailer: 64-bit checksum of every byte before it; the file ends there.
 * Everything streams through session_io.c (one buffer, large writes, no per-route syscalls).
 * Every count is checked against the model and against the bytes left before it is used. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/model.h"
#include "core/session_file.h"

#define MAGIC "ROSASESS"
#define VERSION 1u
#define HDR_BYTES 64u

/* ---------------------------------------------------------------- model fingerprint */

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}

static uint64_t fnv_i(uint64_t h, int64_t v) { return fnv(h, &v, sizeof v); }

static uint64_t fnv_mat(uint64_t h, const rosa__mat *w) {
    h = fnv_i(h, w->dt);
    h = fnv_i(h, w->rows);
    h = fnv_i(h, w->cols);
    if (w->w && w->rows > 0 && w->cols > 0) { /* a sample of the bytes: the first row's start */
        size_t n = (size_t)w->cols * rosa__dtype_size(w->dt);
        h = fnv(h, w->w, n < 64 ? n : 64);
    }
    return h;
}

static uint64_t fingerprint(const rosa_model *m) {
    uint64_t h = 0xCBF29CE484222325ull;
    const char *tag = "rosa-session";
    h = fnv(h, tag, strlen(tag));
    int64_t ints[] = {m->V, m->C, m->L, m->Hq, m->Hkv, m->D, m->F, m->M, m->R, m->n_rosa,
                      m->inject_mode, m->precision, m->emulate_cuda_bf16, m->cfg.tied};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) h = fnv_i(h, ints[i]);
    h = fnv(h, m->backend->name, strlen(m->backend->name));
    h = fnv(h, &m->cfg.eps, sizeof m->cfg.eps);
    h = fnv(h, &m->rope_scale, sizeof m->rope_scale);
    if (m->inv_freq) h = fnv(h, m->inv_freq, (size_t)(m->D / 2) * sizeof(float));
    for (int l = 0; l < m->L; l++) {
        const rosa__layer *ly = &m->layer[l];
        h = fnv_i(h, m->layer_window[l]);
        h = fnv_i(h, m->layer_rosa_flag[l]);
        h = fnv_i(h, ly->rosa);
        const rosa__mat *ws[] = {&ly->q, &ly->k, &ly->v, &ly->o, &ly->gate, &ly->up, &ly->down,
                                 &ly->rq, &ly->rk, &ly->rv, &ly->rout};
        for (size_t i = 0; i < sizeof ws / sizeof *ws; i++) h = fnv_mat(h, ws[i]);
    }
    h = fnv_mat(h, &m->embed);
    return fnv_mat(h, &m->lm_head);
}

/* ---------------------------------------------------------------- routes */

int rosa__routes_write(rosa__sio *w, const rosa__routes *rs) {
    for (size_t i = 0; i < rs->n; i++) {
        rosa__route_hdr h;
        uint32_t words[ROSA__ROUTE_HDR_WORDS];
        int err = rosa__route_get_hdr(&rs->r[i], &h);
        if (err) return err;
        rosa__route_hdr_pack(&h, words);
        if ((err = rosa__sio_put(w, words, sizeof words))) return err;
        void *p[ROSA__ROUTE_NARRAYS];
        size_t b[ROSA__ROUTE_NARRAYS];
        rosa__route_arrays(&rs->r[i], p, b);
        for (int a = 0; a < ROSA__ROUTE_NARRAYS; a++)
            if (b[a] && (err = rosa__sio_put(w, p[a], b[a]))) return err;
    }
    return 0;
}

/* The structural check (rosa_sam_check.c) costs about as much CPU as reading a route, so with
 * many routes a second thread checks route i while this one reads route i + 1 (routes are
 * independent; a route's arrays do not change once read).  Its first error wins. */
typedef struct check_pipe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rosa__routes *rs;
    size_t ready; /* routes read so far */
    int stop, err;
} check_pipe;

static void *check_main(void *arg) {
    check_pipe *c = arg;
    for (size_t i = 0;; i++) {
        pthread_mutex_lock(&c->mu);
        while (c->ready <= i && !c->stop) pthread_cond_wait(&c->cv, &c->mu);
        int more = c->ready > i && !c->err;
        pthread_mutex_unlock(&c->mu);
        if (!more) break;
        int err = rosa__route_check(&c->rs->r[i]);
        if (err) {
            pthread_mutex_lock(&c->mu);
            c->err = err;
            pthread_mutex_unlock(&c->mu);
            break;
        }
    }
    return NULL;
}

/* 0: route i is read; the pipe (when there is one) takes it, else it is checked here */
static int route_read_done(check_pipe *c, rosa__routes *rs, size_t i) {
    if (!c) return rosa__route_check(&rs->r[i]);
    pthread_mutex_lock(&c->mu);
    c->ready = i + 1;
    int err = c->err;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return err;
}

static int read_routes(rosa__sio *r, rosa__routes *rs, int64_t pos, check_pipe *c) {
    for (size_t i = 0; i < rs->n; i++) {
        uint32_t words[ROSA__ROUTE_HDR_WORDS];
        rosa__route_hdr h;
        int err = rosa__sio_get(r, words, sizeof words);
        if (err) return err;
        rosa__route_hdr_unpack(words, &h);
        /* every route has seen every token */
        if (rosa__route_check_hdr(&h) || h.t != pos) return ROSA_ERR_FORMAT;
        uint64_t bytes = ((uint64_t)h.nst + h.npool + 2ull * h.capx + h.nsample + 3ull * h.ncells) * 4 +
                         (uint64_t)h.nruns * ROSA__RUN_BYTES;
        if (bytes > r->left) return ROSA_ERR_FORMAT; /* before allocating */
        if ((err = rosa__route_from_hdr(&rs->r[i], &h))) return err;
        void *p[ROSA__ROUTE_NARRAYS];
        size_t b[ROSA__ROUTE_NARRAYS];
        rosa__route_arrays(&rs->r[i], p, b);
        for (int a = 0; a < ROSA__ROUTE_NARRAYS; a++)
            if (b[a] && (err = rosa__sio_get(r, p[a], b[a]))) return err;
        /* the checksum detects corruption, not forgery: a route is stepped only once its
         * structure is known to be safe (rosa_sam_check.c) */
        if ((err = route_read_done(c, rs, i))) return err;
    }
    return 0;
}

int rosa__routes_read(rosa__sio *r, rosa__routes *rs, int64_t pos) {
    check_pipe c = {.rs = rs};
    pthread_t th;
    int piped = rs->n >= 16 && sysconf(_SC_NPROCESSORS_ONLN) > 1 &&
                !pthread_mutex_init(&c.mu, NULL);
    if (piped && pthread_cond_init(&c.cv, NULL)) {
        pthread_mutex_destroy(&c.mu);
        piped = 0;
    }
    if (piped && pthread_create(&th, NULL, check_main, &c)) {
        pthread_cond_destroy(&c.cv);
        pthread_mutex_destroy(&c.mu);
        piped = 0;
    }
    int err = read_routes(r, rs, pos, piped ? &c : NULL);
    if (!piped) return err;
    pthread_mutex_lock(&c.mu);
    c.stop = 1;
    pthread_cond_signal(&c.cv);
    pthread_mutex_unlock(&c.mu);
    pthread_join(th, NULL);
    pthread_cond_destroy(&c.cv);
    pthread_mutex_destroy(&c.mu);
    return err ? err : c.err;
}

/* ---------------------------------------------------------------- attention caches */

/* Move layer l's valid positions (rosa__kv_valid) between the session's ring x (K or V: position
 * p in slot p % S, or p) and the file, where they lie in the order of slots p % W (format
 * version 1: the ring as it was before the rollback horizon).  In runs of consecutive slots on
 * both sides: one run when the ring has no horizon, at most four otherwise. */
/* bf16 caches (the CPU backend's --precision bf16) travel as float32, so the format stays one:
 * widening is exact and rounding back (to nearest, ties to even) gives the same bits */
static void bf16_widen(const uint16_t *h, float *f, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)h[i] << 16;
        memcpy(&f[i], &u, 4);
    }
}

static void bf16_narrow(const float *f, uint16_t *h, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &f[i], 4);
        if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu)) h[i] = (uint16_t)((u >> 16) | 0x40);
        else h[i] = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
}

/* n rows of the cache at x (elements of es bytes) to or from the file's float32 rows */
static int kv_io(rosa__sio *io, int put, char *x, size_t es, size_t nrow, size_t rowlen) {
    if (es == sizeof(float)) return put ? rosa__sio_put(io, x, nrow * rowlen * es) : rosa__sio_get(io, x, nrow * rowlen * es);
    if (es != sizeof(uint16_t)) return ROSA_ERR_INVALID;
    float buf[4096];
    size_t total = nrow * rowlen;
    uint16_t *h = (uint16_t *)(void *)x;
    for (size_t i = 0; i < total;) {
        size_t c = total - i < 4096 ? total - i : 4096;
        int err;
        if (put) {
            bf16_widen(h + i, buf, c);
            err = rosa__sio_put(io, buf, c * sizeof(float));
        } else if (!(err = rosa__sio_get(io, buf, c * sizeof(float)))) {
            bf16_narrow(buf, h + i, c);
        }
        if (err) return err;
        i += c;
    }
    return 0;
}

static int kv_rows(rosa__sio *io, int put, const rosa_model *m, int l, int64_t pos, void *x, size_t es) {
    int64_t n = rosa__kv_valid(m, l, pos), S = rosa__kv_slots(m, l), W = m->layer_window[l];
    int64_t base = pos - n; /* the oldest valid position */
    size_t rowlen = (size_t)m->Hkv * m->D, row = rowlen * es;
    for (int64_t j = 0; j < n;) {
        /* file slot j holds the valid position p with p % W == j (p == j while pos <= W) */
        int64_t p = n == pos ? j : base + ((j - base) % W + W) % W;
        int64_t slot = S ? p % S : p, run = n - j;
        if (run > pos - p) run = pos - p;          /* the newest position: next comes the oldest */
        if (S && run > S - slot) run = S - slot;   /* the ring wraps */
        int err = kv_io(io, put, (char *)x + (size_t)slot * row, es, (size_t)run, rowlen);
        if (err) return err;
        j += run;
    }
    return 0;
}

/* ---------------------------------------------------------------- header */

typedef struct {
    uint32_t version, hdr_bytes;
    uint64_t fp;
    int64_t pos;
    uint32_t has_logits, V, L, row;
    uint64_t nroutes;
    uint32_t route_words, zero;
} file_hdr;

static void hdr_encode(const file_hdr *h, uint8_t *b) {
    memset(b, 0, HDR_BYTES);
    memcpy(b, MAGIC, 8);
    memcpy(b + 8, &h->version, 4);
    memcpy(b + 12, &h->hdr_bytes, 4);
    memcpy(b + 16, &h->fp, 8);
    memcpy(b + 24, &h->pos, 8);
    memcpy(b + 32, &h->has_logits, 4);
    memcpy(b + 36, &h->V, 4);
    memcpy(b + 40, &h->L, 4);
    memcpy(b + 44, &h->row, 4);
    memcpy(b + 48, &h->nroutes, 8);
    memcpy(b + 56, &h->route_words, 4);
    memcpy(b + 60, &h->zero, 4);
}

static void hdr_decode(const uint8_t *b, file_hdr *h) {
    memcpy(&h->version, b + 8, 4);
    memcpy(&h->hdr_bytes, b + 12, 4);
    memcpy(&h->fp, b + 16, 8);
    memcpy(&h->pos, b + 24, 8);
    memcpy(&h->has_logits, b + 32, 4);
    memcpy(&h->V, b + 36, 4);
    memcpy(&h->L, b + 40, 4);
    memcpy(&h->row, b + 44, 4);
    memcpy(&h->nroutes, b + 48, 8);
    memcpy(&h->route_words, b + 56, 4);
    memcpy(&h->zero, b + 60, 4);
}

static file_hdr model_hdr(const rosa_model *m) {
    file_hdr h;
    memset(&h, 0, sizeof h);
    h.version = VERSION;
    h.hdr_bytes = HDR_BYTES;
    h.fp = fingerprint(m);
    h.V = (uint32_t)m->V;
    h.L = (uint32_t)m->L;
    h.row = (uint32_t)(m->Hkv * m->D);
    h.nroutes = (uint64_t)m->n_rosa * m->R;
    h.route_words = ROSA__ROUTE_HDR_WORDS;
    return h;
}

/* ---------------------------------------------------------------- save */

static int write_session(rosa__sio *w, rosa_session *s) {
    rosa_model *m = s->m;
    file_hdr h = model_hdr(m);
    h.pos = s->pos;
    h.has_logits = (uint32_t)s->has_logits;
    uint8_t hb[HDR_BYTES];
    hdr_encode(&h, hb);
    int err = rosa__sio_put(w, hb, sizeof hb);
    if (!err && s->has_logits) err = rosa__sio_put(w, s->last_logits, (size_t)m->V * sizeof(float));
    for (int l = 0; l < m->L && !err; l++) {
        uint64_t n = (uint64_t)rosa__kv_valid(m, l, s->pos);
        void *k, *v;
        size_t es = 0;
        if (!(err = rosa__sio_put(w, &n, sizeof n)) && n && !(err = m->backend->session_kv_host(s, l, 0, &k, &v, &es)) &&
            !(err = kv_rows(w, 1, m, l, s->pos, k, es)))
            err = kv_rows(w, 1, m, l, s->pos, v, es);
    }
    if (!err) err = rosa__routes_write(w, &s->routes);
    if (!err) err = rosa__sio_finish(w);
    return err;
}

int rosa_session_save(rosa_session *s, const char *path) {
    if (!s || !path || s->broken) return ROSA_ERR_INVALID;
    if (!s->m->backend->session_kv_host) return ROSA_ERR_UNSUPPORTED;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) return ROSA_ERR_NOMEM;
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        free(tmp);
        return ROSA_ERR_IO;
    }
    rosa__sio w;
    int err = rosa__sio_writer(&w, fd);
    if (!err) err = write_session(&w, s);
    rosa__sio_close(&w);
    if (close(fd) && !err) err = ROSA_ERR_IO;
    if (!err && rename(tmp, path)) err = ROSA_ERR_IO;
    if (err) unlink(tmp);
    free(tmp);
    return err;
}

/* ---------------------------------------------------------------- restore */

static int read_session(rosa__sio *r, rosa_model *m, rosa_session **out) {
    uint8_t hb[HDR_BYTES];
    int err = rosa__sio_get(r, hb, sizeof hb);
    if (err) return err;
    if (memcmp(hb, MAGIC, 8)) return ROSA_ERR_FORMAT;
    file_hdr h, want = model_hdr(m);
    hdr_decode(hb, &h);
    if (h.version == 0) return ROSA_ERR_FORMAT;
    if (h.version > VERSION) return ROSA_ERR_UNSUPPORTED;
    if (h.hdr_bytes != HDR_BYTES || h.zero || h.has_logits > 1 || h.pos < 0 || h.pos > 0x7FFFFFFF ||
        h.route_words != ROSA__ROUTE_HDR_WORDS)
        return ROSA_ERR_FORMAT;
    if (h.fp != want.fp) return ROSA_ERR_MISMATCH;
    if (h.V != want.V || h.L != want.L || h.row != want.row || h.nroutes != want.nroutes)
        return ROSA_ERR_FORMAT; /* the fingerprint matched: the file contradicts itself */
    rosa_session *s;
    if ((err = rosa_session_new(m, &s))) return err;
    s->pos = h.pos;
    s->has_logits = (int)h.has_logits;
    if (h.has_logits) err = rosa__sio_get(r, s->last_logits, (size_t)m->V * sizeof(float));
    for (int l = 0; l < m->L && !err; l++) {
        uint64_t n;
        void *k, *v;
        size_t es = 0;
        if ((err = rosa__sio_get(r, &n, sizeof n))) break;
        if (n != (uint64_t)rosa__kv_valid(m, l, h.pos) || 2 * n * h.row * sizeof(float) > r->left) {
            err = ROSA_ERR_FORMAT;
            break;
        }
        if (n && !(err = m->backend->session_kv_host(s, l, rosa__kv_filled(m, l, h.pos), &k, &v, &es)) &&
            !(err = kv_rows(r, 0, m, l, h.pos, k, es)))
            err = kv_rows(r, 0, m, l, h.pos, v, es);
    }
    if (!err) err = rosa__routes_read(r, &s->routes, h.pos);
    if (!err) rosa__routes_set_horizon(&s->routes, (uint32_t)m->rollback); /* the horizon starts here */
    s->rb_floor = h.pos;
    if (!err) err = rosa__sio_check_end(r);
    if (err) {
        rosa_session_free(s);
        return err;
    }
    *out = s;
    return 0;
}

int rosa_session_restore(rosa_model *m, const char *path, rosa_session **out) {
    if (!out) return ROSA_ERR_INVALID;
    *out = NULL;
    if (!m || !path) return ROSA_ERR_INVALID;
    if (!m->backend->session_kv_host) return ROSA_ERR_UNSUPPORTED;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ROSA_ERR_IO;
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return ROSA_ERR_IO;
    }
    rosa__sio r;
    int err = rosa__sio_reader(&r, fd, (uint64_t)st.st_size);
    if (!err) err = read_session(&r, m, out);
    rosa__sio_close(&r);
    close(fd);
    return err;
}
