/* session_files.c: save, check, restore and remove the two files of one session under
 * --session-dir (format in session_files.h and docs/SERVER.md).
 *
 * Sidecar layout, little-endian: magic "ROSASIDE", u32 version, u32 key bytes, u64 tokens,
 * u64 engine file bytes, u64 engine file's last 8 bytes, u64 FNV-1a of bytes 0..40 + key +
 * tokens, 16 zero bytes; then the key, then the tokens as i32. */
#include "session_files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}
#define FNV0 0xCBF29CE484222325ull

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

void srv_sfile_name(const char *key, char out[17]) {
    snprintf(out, 17, "%016llx", (unsigned long long)fnv(FNV0, key, strlen(key)));
}

int srv_sfile_path(char *out, size_t cap, const char *dir, const char *name, const char *ext) {
    int k = snprintf(out, cap, "%s/%s%s", dir, name, ext);
    return k < 0 || (size_t)k >= cap ? -1 : 0;
}

static int write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n > (1u << 30) ? (1u << 30) : n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static int read_all(int fd, void *p, size_t n, off_t off) {
    char *c = p;
    while (n) {
        ssize_t k = pread(fd, c, n > (1u << 30) ? (1u << 30) : n, off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        c += k;
        n -= (size_t)k;
        off += k;
    }
    return 0;
}

/* size and last 8 bytes of an open engine file */
static int engine_tail(int fd, uint64_t *size, uint64_t *tail) {
    struct stat st;
    uint8_t b[8];
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size < 8) return ROSA_ERR_FORMAT;
    if (read_all(fd, b, 8, st.st_size - 8)) return ROSA_ERR_IO;
    *size = (uint64_t)st.st_size;
    *tail = get64(b);
    return 0;
}

/* ---------------------------------------------------------------- save */

int srv_sfile_save(const char *dir, const char *key, rosa_session *rs, const int32_t *toks,
                   int64_t n, size_t *bytes) {
    static atomic_ulong ctr;
    size_t klen = strlen(key);
    if (!klen || klen > SRV_SIDE_MAX_ID || n < 0 || n > SRV_SIDE_MAX_TOKENS)
        return ROSA_ERR_INVALID;
    char name[17], eng[1200], side[1200], epart[1300], spart[1300];
    srv_sfile_name(key, name);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* names of this save alone: nobody else writes them (replicas sharing the directory) */
    char uniq[96];
    snprintf(uniq, sizeof uniq, ".%ld-%lld%09ld-%lu.part", (long)getpid(), (long long)ts.tv_sec,
             ts.tv_nsec, (unsigned long)atomic_fetch_add(&ctr, 1));
    if (srv_sfile_path(eng, sizeof eng, dir, name, ".rosa") ||
        srv_sfile_path(side, sizeof side, dir, name, ".side") ||
        srv_sfile_path(epart, sizeof epart, dir, name, uniq))
        return ROSA_ERR_INVALID;
    snprintf(spart, sizeof spart, "%s.side", epart);
    int rc = rosa_session_save(rs, epart);
    if (rc) return rc;
    uint64_t esize = 0, etail = 0;
    int efd = open(epart, O_RDONLY | O_CLOEXEC);
    rc = efd < 0 ? ROSA_ERR_IO : engine_tail(efd, &esize, &etail);
    if (efd >= 0) close(efd);
    size_t sbytes = SRV_SIDE_HDR + klen + 4 * (size_t)n;
    uint8_t *b = rc ? NULL : calloc(1, sbytes);
    if (!rc && !b) rc = ROSA_ERR_NOMEM;
    if (!rc) {
        memcpy(b, SRV_SIDE_MAGIC, 8);
        put32(b + 8, SRV_SIDE_VERSION);
        put32(b + 12, (uint32_t)klen);
        put64(b + 16, (uint64_t)n);
        put64(b + 24, esize);
        put64(b + 32, etail);
        memcpy(b + SRV_SIDE_HDR, key, klen);
        for (int64_t i = 0; i < n; i++) put32(b + SRV_SIDE_HDR + klen + 4 * i, (uint32_t)toks[i]);
        uint64_t h = fnv(FNV0, b, 40);
        put64(b + 40, fnv(h, b + SRV_SIDE_HDR, sbytes - SRV_SIDE_HDR));
        int fd = open(spart, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) rc = ROSA_ERR_IO;
        else {
            if (write_all(fd, b, sbytes)) rc = ROSA_ERR_IO;
            if (close(fd) && !rc) rc = ROSA_ERR_IO;
        }
    }
    free(b);
    /* the engine file first: between the two renames an older sidecar does not match it */
    if (!rc && rename(epart, eng)) rc = ROSA_ERR_IO;
    if (!rc && rename(spart, side)) {
        rc = ROSA_ERR_IO;
        unlink(eng);
        unlink(side);
    }
    if (rc) {
        unlink(epart);
        unlink(spart);
        return rc;
    }
    *bytes = (size_t)esize + sbytes;
    return 0;
}

/* ---------------------------------------------------------------- read */

/* Header and key of the sidecar open on fd; with toks, also the tokens (checksum, ids < vocab). */
static int side_read(int fd, srv_side_info *o, int32_t **toks, int vocab) {
    struct stat st;
    uint8_t h[SRV_SIDE_HDR];
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) return ROSA_ERR_IO;
    if (st.st_size < (off_t)SRV_SIDE_HDR) return ROSA_ERR_FORMAT;
    if (read_all(fd, h, sizeof h, 0)) return ROSA_ERR_IO;
    if (memcmp(h, SRV_SIDE_MAGIC, 8)) return ROSA_ERR_FORMAT;
    uint32_t ver = get32(h + 8), klen = get32(h + 12);
    uint64_t n = get64(h + 16);
    if (ver == 0) return ROSA_ERR_FORMAT;
    if (ver > SRV_SIDE_VERSION) return ROSA_ERR_UNSUPPORTED;
    for (int i = 48; i < 64; i++)
        if (h[i]) return ROSA_ERR_FORMAT;
    if (klen == 0 || klen > SRV_SIDE_MAX_ID || n > SRV_SIDE_MAX_TOKENS ||
        (uint64_t)st.st_size != SRV_SIDE_HDR + klen + 4 * n)
        return ROSA_ERR_FORMAT;
    memset(o, 0, sizeof *o);
    if (read_all(fd, o->id, klen, SRV_SIDE_HDR)) return ROSA_ERR_IO;
    if (memchr(o->id, 0, klen)) return ROSA_ERR_FORMAT;
    o->n = (int64_t)n;
    o->engine_bytes = get64(h + 24);
    o->engine_tail = get64(h + 32);
    o->side_bytes = (uint64_t)st.st_size;
    if (!toks) return 0;
    uint8_t *raw = malloc(4 * n + 1);
    int32_t *t = malloc(sizeof(int32_t) * n + 1);
    int rc = raw && t ? 0 : ROSA_ERR_NOMEM;
    if (!rc && read_all(fd, raw, 4 * n, SRV_SIDE_HDR + klen)) rc = ROSA_ERR_IO;
    if (!rc) {
        uint64_t sum = fnv(fnv(fnv(FNV0, h, 40), o->id, klen), raw, 4 * n);
        if (sum != get64(h + 40)) rc = ROSA_ERR_FORMAT;
    }
    for (uint64_t i = 0; !rc && i < n; i++) {
        t[i] = (int32_t)get32(raw + 4 * i);
        if (t[i] < 0 || t[i] >= vocab) rc = ROSA_ERR_FORMAT;
    }
    free(raw);
    if (rc) {
        free(t);
        return rc;
    }
    *toks = t;
    return 0;
}

int srv_sfile_peek(const char *path, srv_side_info *out) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 1 : ROSA_ERR_IO;
    int rc = side_read(fd, out, NULL, 0);
    close(fd);
    return rc;
}

int srv_sfile_read_side(const char *path, srv_side_info *out, int32_t **toks, int vocab) {
    *toks = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 1 : ROSA_ERR_IO;
    int rc = side_read(fd, out, toks, vocab);
    close(fd);
    return rc;
}

int srv_sfile_restore(const char *dir, const char *key, rosa_model *m, int vocab,
                      rosa_session **rs, int32_t **toks, int64_t *n) {
    char name[17], eng[1200], side[1200];
    srv_sfile_name(key, name);
    *rs = NULL;
    *toks = NULL;
    *n = 0;
    if (srv_sfile_path(eng, sizeof eng, dir, name, ".rosa") ||
        srv_sfile_path(side, sizeof side, dir, name, ".side"))
        return ROSA_ERR_INVALID;
    int sfd = open(side, O_RDONLY | O_CLOEXEC);
    if (sfd < 0) return errno == ENOENT ? 1 : ROSA_ERR_IO;
    srv_side_info si;
    int32_t *t = NULL;
    int rc = side_read(sfd, &si, NULL, 0);
    if (!rc && strcmp(si.id, key)) rc = 1; /* another key with the same hash: not ours */
    if (!rc) rc = side_read(sfd, &si, &t, vocab);
    close(sfd);
    if (rc) return rc;
    /* the engine file, through one descriptor: checked to be the one the sidecar names, then
     * read by the engine through /proc/self/fd (the same file even if a replica renames a new
     * one over the name meanwhile) */
    int efd = open(eng, O_RDONLY | O_CLOEXEC);
    uint64_t esize = 0, etail = 0;
    rc = efd < 0 ? (errno == ENOENT ? ROSA_ERR_FORMAT : ROSA_ERR_IO)
                 : engine_tail(efd, &esize, &etail);
    if (!rc && (esize != si.engine_bytes || etail != si.engine_tail)) rc = ROSA_ERR_FORMAT;
    if (!rc) {
        char fdp[64];
        snprintf(fdp, sizeof fdp, "/proc/self/fd/%d", efd);
        rc = rosa_session_restore(m, access(fdp, R_OK) == 0 ? fdp : eng, rs);
    }
    if (efd >= 0) close(efd);
    if (!rc && rosa_session_length(*rs) != si.n) {
        rosa_session_free(*rs);
        *rs = NULL;
        rc = ROSA_ERR_FORMAT;
    }
    if (rc) {
        free(t);
        return rc;
    }
    *toks = t;
    *n = si.n;
    return 0;
}

void srv_sfile_remove(const char *dir, const char *key) {
    char name[17], eng[1200], side[1200];
    srv_sfile_name(key, name);
    if (srv_sfile_path(eng, sizeof eng, dir, name, ".rosa") ||
        srv_sfile_path(side, sizeof side, dir, name, ".side"))
        return;
    srv_side_info si;
    if (srv_sfile_peek(side, &si) == 0 && strcmp(si.id, key)) return; /* a colliding key's */
    unlink(side);
    unlink(eng);
}
