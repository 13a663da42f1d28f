/* zip_reader.c: the central-directory zip reader behind the PyTorch .pt loader.
 *
 * PyTorch writes its archives with miniz: stored records, local headers whose sizes are zero
 * (the real ones follow in data descriptors and in the central directory), and zip64 end
 * records even for small files.  So sizes and offsets come from the central directory only, the
 * local header is read just to find where the data starts, and every number is checked against
 * the buffer before it is used: a file that lies is refused, never followed. */
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "model/zip_reader.h"

/* ---- little-endian field access (callers check bounds first) ---- */

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const unsigned char *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOC64 0x07064b50u
#define EOCD_LEN 22
#define LOC64_LEN 20
#define EOCD64_LEN 56
#define CENTRAL_LEN 46
#define LOCAL_LEN 30

/* ---- CRC-32, four bits at a time: a 16-entry constant table, no global state ---- */

static const uint32_t crc_nibble[16] = {
    0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4, 0x4db26158, 0x5005713c,
    0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c, 0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c};

uint32_t rosa__crc32(uint32_t crc, const void *p, size_t n) {
    const unsigned char *b = p;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= b[i];
        crc = (crc >> 4) ^ crc_nibble[crc & 15];
        crc = (crc >> 4) ^ crc_nibble[crc & 15];
    }
    return ~crc;
}

/* ---- end of central directory ---- */

/* Find the classic end record: the last signature whose comment runs exactly to the end. */
static int find_eocd(const unsigned char *b, size_t len, size_t *pos) {
    if (len < EOCD_LEN) return -1;
    size_t lo = len - EOCD_LEN > 0xffff ? len - EOCD_LEN - 0xffff : 0;
    for (size_t p = len - EOCD_LEN + 1; p-- > lo;) {
        if (rd32(b + p) == SIG_EOCD && (size_t)rd16(b + p + 20) == len - p - EOCD_LEN) {
            *pos = p;
            return 0;
        }
    }
    return -1;
}

/* Read the zip64 extended sizes of one central entry: fields saturated at 0xffffffff are
 * replaced, in order, from the 0x0001 extra block. */
static int read_zip64_extra(const unsigned char *x, size_t xlen, rosa__zip_entry *e,
                            int need_usize, int need_csize, int need_off) {
    size_t p = 0;
    while (p + 4 <= xlen) {
        uint16_t id = rd16(x + p), sz = rd16(x + p + 2);
        if (sz > xlen - p - 4) return -1;
        if (id == 0x0001) {
            const unsigned char *f = x + p + 4;
            size_t q = 0;
            if (need_usize) { if (q + 8 > sz) return -1; e->size = rd64(f + q); q += 8; }
            if (need_csize) { if (q + 8 > sz) return -1; e->csize = rd64(f + q); q += 8; }
            if (need_off) { if (q + 8 > sz) return -1; e->local_off = rd64(f + q); q += 8; }
            return 0;
        }
        p += 4 + (size_t)sz;
    }
    return -1;
}

static int cmp_entry(const void *a, const void *b) {
    const rosa__zip_entry *x = a, *y = b;
    size_t m = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, m);
    if (c) return c;
    return (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

int rosa__zip_open(rosa__zip *z, const void *base, size_t len, const char *path, char *err,
                   size_t errlen) {
    memset(z, 0, sizeof *z);
    z->base = base;
    z->len = len;
    z->path = path;
    const unsigned char *b = base;
    size_t eocd;
    if (find_eocd(b, len, &eocd))
        return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: not a zip archive (no end of central directory record)", path);
    uint64_t n_entries = rd16(b + eocd + 10), cd_size = rd32(b + eocd + 12), cd_off = rd32(b + eocd + 16);
    uint64_t cd_end_limit = eocd; /* the directory must end before the end records */
    if (rd16(b + eocd + 4) != 0 || rd16(b + eocd + 6) != 0 || rd16(b + eocd + 8) != rd16(b + eocd + 10))
        return rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED, "%s: multi-disk zip archives are not supported", path);
    if (eocd >= LOC64_LEN && rd32(b + eocd - LOC64_LEN) == SIG_LOC64) {
        /* zip64: the real counts live in the zip64 end record the locator points at */
        const unsigned char *loc = b + eocd - LOC64_LEN;
        uint64_t e64 = rd64(loc + 8);
        if (rd32(loc + 4) != 0 || rd32(loc + 16) != 1)
            return rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED, "%s: multi-disk zip archives are not supported", path);
        if (e64 > eocd - LOC64_LEN || eocd - LOC64_LEN - e64 < EOCD64_LEN || rd32(b + e64) != SIG_EOCD64)
            return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: zip64 end of central directory record is missing or out of bounds", path);
        const unsigned char *r = b + e64;
        if (rd32(r + 16) != 0 || rd32(r + 20) != 0 || rd64(r + 24) != rd64(r + 32))
            return rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED, "%s: multi-disk zip archives are not supported", path);
        n_entries = rd64(r + 32);
        cd_size = rd64(r + 40);
        cd_off = rd64(r + 48);
        cd_end_limit = e64;
    }
    if (cd_off > cd_end_limit || cd_size > cd_end_limit - cd_off)
        return rosa__err(err, errlen, ROSA_ERR_FORMAT,
                         "%s: zip central directory (offset %llu, %llu bytes) lies outside the file (%zu bytes)",
                         path, (unsigned long long)cd_off, (unsigned long long)cd_size, len);
    if (n_entries > cd_size / CENTRAL_LEN || n_entries > ROSA_ZIP_MAX_ENTRIES)
        return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: zip directory claims %llu records, more than its %llu bytes can hold",
                         path, (unsigned long long)n_entries, (unsigned long long)cd_size);
    z->cd_off = cd_off;
    z->e = calloc(n_entries ? (size_t)n_entries : 1, sizeof *z->e);
    if (!z->e) return rosa__err(err, errlen, ROSA_ERR_NOMEM, "%s: out of memory", path);
    const unsigned char *cd = b + cd_off;
    size_t p = 0;
    for (uint64_t i = 0; i < n_entries; i++) {
        if (cd_size - p < CENTRAL_LEN || rd32(cd + p) != SIG_CENTRAL) {
            rosa__zip_close(z);
            return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: zip central directory is corrupt (record %llu of %llu)",
                             path, (unsigned long long)i, (unsigned long long)n_entries);
        }
        const unsigned char *c = cd + p;
        size_t nlen = rd16(c + 28), xlen = rd16(c + 30), clen = rd16(c + 32);
        if (cd_size - p - CENTRAL_LEN < nlen + xlen + clen) {
            rosa__zip_close(z);
            return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: zip central directory record %llu runs past the directory",
                             path, (unsigned long long)i);
        }
        rosa__zip_entry *e = &z->e[i];
        e->flags = rd16(c + 8);
        e->method = rd16(c + 10);
        e->crc = rd32(c + 16);
        e->csize = rd32(c + 20);
        e->size = rd32(c + 24);
        e->local_off = rd32(c + 42);
        e->name = (const char *)c + CENTRAL_LEN;
        e->name_len = nlen;
        int nu = e->size == 0xffffffffu, nc = e->csize == 0xffffffffu, no = e->local_off == 0xffffffffu;
        if ((nu || nc || no) && read_zip64_extra(c + CENTRAL_LEN + nlen, xlen, e, nu, nc, no)) {
            rosa__zip_close(z);
            return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: zip record %llu lacks the zip64 sizes it announces",
                             path, (unsigned long long)i);
        }
        p += CENTRAL_LEN + nlen + xlen + clen;
    }
    z->n = (int)n_entries;
    qsort(z->e, (size_t)z->n, sizeof *z->e, cmp_entry);
    for (int i = 1; i < z->n; i++) {
        if (cmp_entry(&z->e[i - 1], &z->e[i]) == 0) {
            char q[256];
            rosa__quote(q, sizeof q, z->e[i].name, z->e[i].name_len);
            rosa__zip_close(z);
            return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: zip record '%s' appears twice", path, q);
        }
    }
    return 0;
}

void rosa__zip_close(rosa__zip *z) {
    free(z->e);
    z->e = NULL;
    z->n = 0;
}

int rosa__zip_find(const rosa__zip *z, const char *name, size_t name_len) {
    rosa__zip_entry key;
    memset(&key, 0, sizeof key);
    key.name = name;
    key.name_len = name_len;
    int lo = 0, hi = z->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = cmp_entry(&z->e[mid], &key);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

int rosa__zip_data(const rosa__zip *z, int i, const unsigned char **data, char *err, size_t errlen) {
    const rosa__zip_entry *e = &z->e[i];
    char q[256];
    rosa__quote(q, sizeof q, e->name, e->name_len);
    if (e->flags & 1)
        return rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED, "%s: zip record '%s' is encrypted", z->path, q);
    if (e->method != 0)
        return rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED,
                         "%s: zip record '%s' is compressed (method %u); only stored records are supported, "
                         "as torch.save writes them (was the archive re-zipped?)", z->path, q, e->method);
    if (e->csize != e->size)
        return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: zip record '%s' is stored but its sizes differ (%llu vs %llu)",
                         z->path, q, (unsigned long long)e->csize, (unsigned long long)e->size);
    uint64_t lim = z->cd_off;
    if (e->local_off > lim || lim - e->local_off < LOCAL_LEN || rd32(z->base + e->local_off) != SIG_LOCAL)
        return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: zip record '%s': local header missing or out of bounds", z->path, q);
    const unsigned char *h = z->base + e->local_off;
    uint64_t nlen = rd16(h + 26), xlen = rd16(h + 28);
    uint64_t start = e->local_off + LOCAL_LEN + nlen + xlen;
    if (start > lim || nlen != e->name_len || memcmp(h + LOCAL_LEN, e->name, nlen) != 0 || rd16(h + 8) != e->method)
        return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: zip record '%s': local header does not match the central directory",
                         z->path, q);
    if (e->size > lim - start)
        return rosa__err(err, errlen, ROSA_ERR_FORMAT,
                         "%s: zip record '%s' (%llu bytes at offset %llu) runs past the end of the data area",
                         z->path, q, (unsigned long long)e->size, (unsigned long long)start);
    *data = z->base + start;
    return 0;
}
