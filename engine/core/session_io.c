/* session_io.c: buffered, checksummed sequential I/O for session files (see session_io.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rosa.h"
#include "core/session_io.h"

#define BUF_BYTES ((size_t)8 << 20)
#define DIRECT_MIN ((size_t)1 << 20) /* arrays this large bypass the buffer */

/* ---------------------------------------------------------------- checksum */

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull

static uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static void block(uint64_t *v, const uint8_t *p) {
    for (int i = 0; i < 4; i++) {
        uint64_t w;
        memcpy(&w, p + 8 * i, 8);
        v[i] = rotl(v[i] + w * P2, 31) * P1;
    }
}

void rosa__cks_init(rosa__cks *c) {
    memset(c, 0, sizeof *c);
    c->v[0] = P1 + P2;
    c->v[1] = P2;
    c->v[2] = 0;
    c->v[3] = 0 - P1;
}

void rosa__cks_update(rosa__cks *c, const void *vp, size_t n) {
    const uint8_t *p = vp;
    c->total += n;
    if (c->ntail) {
        size_t k = 32 - c->ntail < n ? 32 - c->ntail : n;
        memcpy(c->tail + c->ntail, p, k);
        c->ntail += k;
        p += k;
        n -= k;
        if (c->ntail < 32) return;
        block(c->v, c->tail);
        c->ntail = 0;
    }
    uint64_t v0 = c->v[0], v1 = c->v[1], v2 = c->v[2], v3 = c->v[3];
    for (; n >= 32; p += 32, n -= 32) { /* the hot loop: four independent lanes */
        uint64_t w0, w1, w2, w3;
        memcpy(&w0, p, 8);
        memcpy(&w1, p + 8, 8);
        memcpy(&w2, p + 16, 8);
        memcpy(&w3, p + 24, 8);
        v0 = rotl(v0 + w0 * P2, 31) * P1;
        v1 = rotl(v1 + w1 * P2, 31) * P1;
        v2 = rotl(v2 + w2 * P2, 31) * P1;
        v3 = rotl(v3 + w3 * P2, 31) * P1;
    }
    c->v[0] = v0;
    c->v[1] = v1;
    c->v[2] = v2;
    c->v[3] = v3;
    memcpy(c->tail, p, n);
    c->ntail = n;
}

uint64_t rosa__cks_final(const rosa__cks *c) {
    uint64_t v[4] = {c->v[0], c->v[1], c->v[2], c->v[3]};
    uint8_t last[32] = {0};
    memcpy(last, c->tail, c->ntail);
    block(v, last); /* the tail, zero-padded; the length below tells paddings apart */
    uint64_t h = rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18) + c->total * P3;
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    return h ^ (h >> 32);
}

/* ---------------------------------------------------------------- raw I/O */

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n) {
        ssize_t k = write(fd, p, n > ((size_t)1 << 30) ? (size_t)1 << 30 : n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return ROSA_ERR_IO;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int read_all(int fd, uint8_t *p, size_t n) {
    while (n) {
        ssize_t k = read(fd, p, n > ((size_t)1 << 30) ? (size_t)1 << 30 : n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return ROSA_ERR_IO;
        if (k == 0) return ROSA_ERR_FORMAT; /* shorter than its size said: changed under us */
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int init(rosa__sio *s, int fd) {
    memset(s, 0, sizeof *s);
    s->fd = fd;
    s->cap = BUF_BYTES;
    s->buf = malloc(s->cap);
    rosa__cks_init(&s->ck);
    return s->buf ? 0 : ROSA_ERR_NOMEM;
}

int rosa__sio_writer(rosa__sio *w, int fd) { return init(w, fd); }

int rosa__sio_reader(rosa__sio *r, int fd, uint64_t size) {
    int err = init(r, fd);
    r->left = size;
    return err;
}

void rosa__sio_close(rosa__sio *s) {
    free(s->buf);
    s->buf = NULL;
}

static int flush(rosa__sio *w) {
    if (!w->err && w->n) w->err = write_all(w->fd, w->buf, w->n);
    w->n = 0;
    return w->err;
}

static int put_raw(rosa__sio *w, const void *vp, size_t n) {
    const uint8_t *p = vp;
    if (w->err) return w->err;
    w->done += n;
    if (n >= DIRECT_MIN) {
        if (flush(w)) return w->err;
        return w->err = write_all(w->fd, p, n);
    }
    while (n) {
        size_t k = w->cap - w->n < n ? w->cap - w->n : n;
        memcpy(w->buf + w->n, p, k);
        w->n += k;
        p += k;
        n -= k;
        if (w->n == w->cap && flush(w)) return w->err;
    }
    return 0;
}

int rosa__sio_put(rosa__sio *w, const void *p, size_t n) {
    if (w->err) return w->err;
    rosa__cks_update(&w->ck, p, n);
    return put_raw(w, p, n);
}

int rosa__sio_finish(rosa__sio *w) {
    uint64_t sum = rosa__cks_final(&w->ck);
    put_raw(w, &sum, sizeof sum);
    return flush(w);
}

static int get_raw(rosa__sio *r, void *vp, size_t n) {
    uint8_t *p = vp;
    if (r->err) return r->err;
    if (n > r->left) return r->err = ROSA_ERR_FORMAT; /* past the end: truncated or a bad count */
    r->left -= n;
    r->done += n;
    size_t have = r->n - r->at, k = have < n ? have : n;
    memcpy(p, r->buf + r->at, k);
    r->at += k;
    p += k;
    n -= k;
    if (!n) return 0;
    if (n >= DIRECT_MIN) return r->err = read_all(r->fd, p, n);
    /* refill: as much as the buffer holds, never past the end of the file */
    uint64_t want = n + r->left < r->cap ? n + r->left : r->cap;
    if ((r->err = read_all(r->fd, r->buf, (size_t)want))) return r->err;
    r->n = (size_t)want;
    memcpy(p, r->buf, n);
    r->at = n;
    return 0;
}

int rosa__sio_get(rosa__sio *r, void *p, size_t n) {
    int err = get_raw(r, p, n);
    if (!err) rosa__cks_update(&r->ck, p, n);
    return err;
}

int rosa__sio_check_end(rosa__sio *r) {
    uint64_t want = rosa__cks_final(&r->ck), got;
    int err = get_raw(r, &got, sizeof got);
    if (err) return err;
    return got == want && r->left == 0 ? 0 : ROSA_ERR_FORMAT;
}
