/* pt_build.c: see pt_build.h.  The layout mirrors tools/make_pt_fixtures.py (and torch's miniz
 * writer): local header with zero sizes, "FB" extra padding data to 64 bytes, data descriptor;
 * central directory; zip64 end record, locator, end record. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pt_build.h"
#include "model/zip_reader.h"

void bb_put(bb *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + n) nc *= 2;
        b->p = realloc(b->p, nc);
        if (!b->p) { /* test helper: nothing sensible to do but stop */
            fprintf(stderr, "pt_build: out of memory\n");
            abort();
        }
        b->cap = nc;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}
void bb_u8(bb *b, unsigned v) {
    unsigned char c = (unsigned char)v;
    bb_put(b, &c, 1);
}
void bb_le(bb *b, uint64_t v, int k) {
    for (int i = 0; i < k; i++) bb_u8(b, (unsigned)(v >> (8 * i)) & 0xff);
}
void bb_str(bb *b, const char *s) { bb_put(b, s, strlen(s)); }
void bb_free(bb *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ------------------------------------------------------------------ zip */

#define BIG 0xffffffffull

/* Output goes through a sink: a chunk of bytes at an absolute offset, or a hole. */
typedef struct sink {
    bb *mem; /* in-memory: holes become zeros */
    int fd;  /* file: pwrite at offsets, holes skipped */
    uint64_t off;
    int failed;
} sink;

static void emit(sink *s, const bb *chunk) {
    if (s->mem) bb_put(s->mem, chunk->p, chunk->n);
    else if (chunk->n && pwrite(s->fd, chunk->p, chunk->n, (off_t)s->off) != (ssize_t)chunk->n) s->failed = 1;
    s->off += chunk->n;
}

static void emit_data(sink *s, const unsigned char *d, uint64_t n) {
    if (d) {
        bb c = {(unsigned char *)d, (size_t)n, (size_t)n};
        emit(s, &c);
        return;
    }
    if (s->mem) {
        for (uint64_t i = 0; i < n; i++) bb_u8(s->mem, 0);
    }
    s->off += n;
}

static void zb_emit(sink *s, const zrec *r, int n) {
    uint64_t *off = calloc((size_t)n + 1, sizeof *off);
    uint32_t *crc = calloc((size_t)n + 1, sizeof *crc);
    bb h = {0};
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(r[i].name);
        off[i] = s->off;
        int z64 = r[i].len >= BIG || off[i] >= BIG;
        size_t x64 = z64 ? 4 + 16 : 0; /* local zip64 extra: both sizes */
        uint64_t start = off[i] + 30 + nl + x64 + 4, pad = (64 - start % 64) % 64;
        crc[i] = r[i].data ? rosa__crc32(0, r[i].data, (size_t)r[i].len) : 0;
        h.n = 0;
        bb_le(&h, 0x04034b50, 4); bb_le(&h, z64 ? 45 : 0, 2); bb_le(&h, 0x0808, 2);
        bb_le(&h, (uint64_t)r[i].method, 2); bb_le(&h, 0, 4); bb_le(&h, 0, 4);
        bb_le(&h, z64 ? BIG : 0, 4); bb_le(&h, z64 ? BIG : 0, 4);
        bb_le(&h, nl, 2); bb_le(&h, x64 + 4 + pad, 2);
        bb_str(&h, r[i].name);
        if (z64) { bb_le(&h, 1, 2); bb_le(&h, 16, 2); bb_le(&h, 0, 8); bb_le(&h, 0, 8); }
        bb_str(&h, "FB"); bb_le(&h, pad, 2);
        for (uint64_t k = 0; k < pad; k++) bb_u8(&h, 'Z');
        emit(s, &h);
        emit_data(s, r[i].data, r[i].len);
        h.n = 0;
        bb_le(&h, 0x08074b50, 4); bb_le(&h, crc[i], 4);
        bb_le(&h, r[i].len, z64 ? 8 : 4); bb_le(&h, r[i].len, z64 ? 8 : 4);
        emit(s, &h);
    }
    uint64_t cd = s->off;
    h.n = 0;
    for (int i = 0; i < n; i++) {
        uint64_t sz = (uint64_t)((int64_t)r[i].len + r[i].size_lie);
        int zs = sz >= BIG, zo = off[i] >= BIG;
        bb_le(&h, 0x02014b50, 4); bb_le(&h, zs || zo ? 0x031e : 0, 2); bb_le(&h, zs || zo ? 45 : 0, 2);
        bb_le(&h, 0x0808, 2); bb_le(&h, (uint64_t)r[i].method, 2); bb_le(&h, 0, 4); bb_le(&h, crc[i], 4);
        bb_le(&h, zs ? BIG : sz, 4); bb_le(&h, zs ? BIG : sz, 4); bb_le(&h, strlen(r[i].name), 2);
        bb_le(&h, (zs ? 16 : 0) + (zo ? 8 : 0) + (zs || zo ? 4 : 0), 2);
        bb_le(&h, 0, 2); bb_le(&h, 0, 2); bb_le(&h, 0, 2); bb_le(&h, 0, 4);
        bb_le(&h, zo ? BIG : off[i], 4);
        bb_str(&h, r[i].name);
        if (zs || zo) { /* only the saturated fields, in order */
            bb_le(&h, 1, 2); bb_le(&h, (zs ? 16 : 0) + (zo ? 8 : 0), 2);
            if (zs) { bb_le(&h, sz, 8); bb_le(&h, sz, 8); }
            if (zo) bb_le(&h, off[i], 8);
        }
    }
    uint64_t cds = h.n, z64 = cd + cds;
    bb_le(&h, 0x06064b50, 4); bb_le(&h, 44, 8); bb_le(&h, 0x031e, 2); bb_le(&h, 0x2d, 2);
    bb_le(&h, 0, 4); bb_le(&h, 0, 4); bb_le(&h, (uint64_t)n, 8); bb_le(&h, (uint64_t)n, 8);
    bb_le(&h, cds, 8); bb_le(&h, cd, 8);
    bb_le(&h, 0x07064b50, 4); bb_le(&h, 0, 4); bb_le(&h, z64, 8); bb_le(&h, 1, 4);
    bb_le(&h, 0x06054b50, 4); bb_le(&h, 0, 2); bb_le(&h, 0, 2); bb_le(&h, (uint64_t)n, 2);
    bb_le(&h, (uint64_t)n, 2); bb_le(&h, cds >= BIG ? BIG : cds, 4); bb_le(&h, cd >= BIG ? BIG : cd, 4);
    bb_le(&h, 0, 2);
    emit(s, &h);
    bb_free(&h);
    free(off);
    free(crc);
}

void zb_build(bb *out, const zrec *r, int n) {
    sink s = {out, -1, out->n, 0};
    zb_emit(&s, r, n);
}

int zb_write_file(const char *path, const zrec *r, int n) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    sink s = {NULL, fd, 0, 0};
    zb_emit(&s, r, n);
    if (!s.failed && ftruncate(fd, (off_t)s.off) != 0) s.failed = 1;
    close(fd);
    return s.failed ? -1 : 0;
}

/* ------------------------------------------------------------------ pickle */

void pk_int(bb *b, int64_t v) {
    if (v >= 0 && v < 256) { bb_u8(b, 'K'); bb_u8(b, (unsigned)v); }
    else if (v >= 0 && v < 65536) { bb_u8(b, 'M'); bb_le(b, (uint64_t)v, 2); }
    else if (v >= INT32_MIN && v <= INT32_MAX) { bb_u8(b, 'J'); bb_le(b, (uint64_t)v, 4); }
    else { bb_u8(b, 0x8a); bb_u8(b, 8); bb_le(b, (uint64_t)v, 8); }
}

void pk_str(bb *b, const char *s) {
    bb_u8(b, 'X');
    bb_le(b, strlen(s), 4);
    bb_str(b, s);
}

void pk_global(bb *b, const char *mod, const char *name) {
    bb_u8(b, 'c'); bb_str(b, mod); bb_u8(b, '\n'); bb_str(b, name); bb_u8(b, '\n');
}

void pk_tensor(bb *b, const tspec *t) {
    pk_str(b, t->name);
    pk_global(b, "torch._utils", "_rebuild_tensor_v2");
    bb_u8(b, '(');
    bb_u8(b, '(');
    pk_str(b, "storage");
    pk_global(b, "torch", t->cls);
    pk_str(b, t->key);
    pk_str(b, "cpu");
    pk_int(b, t->st_numel);
    bb_u8(b, 't');
    bb_u8(b, 'Q');
    pk_int(b, t->offset);
    bb_u8(b, '(');
    for (int i = 0; i < t->ndim; i++) pk_int(b, t->shape[i]);
    bb_u8(b, 't');
    bb_u8(b, '(');
    uint64_t acc = 1; /* unsigned: the huge-shape cases would overflow */
    int64_t st[8];
    for (int i = t->ndim - 1; i >= 0; i--) {
        st[i] = t->stride[0] == -1 ? (int64_t)acc : t->stride[i];
        acc *= (uint64_t)t->shape[i];
    }
    for (int i = 0; i < t->ndim; i++) pk_int(b, st[i]);
    bb_u8(b, 't');
    bb_u8(b, 0x89);
    pk_global(b, "collections", "OrderedDict");
    bb_u8(b, ')');
    bb_u8(b, 'R');
    if (t->extra_meta) { bb_u8(b, '}'); pk_str(b, "conj"); bb_u8(b, 0x88); bb_u8(b, 's'); }
    bb_u8(b, 't');
    bb_u8(b, 'R');
}

void pk_dict(bb *b, const tspec *t, int n) {
    bb_u8(b, 0x80); bb_u8(b, 2);
    bb_u8(b, '}');
    bb_u8(b, '(');
    for (int i = 0; i < n; i++) pk_tensor(b, &t[i]);
    bb_u8(b, 'u');
    bb_u8(b, '.');
}
