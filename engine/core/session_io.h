/* session_io.h: buffered, checksummed, strictly sequential file I/O for session files
 * (session_file.c).  One 8 MiB buffer: small fields (route headers, small arrays) gather into
 * it and go out in large write(2)s; arrays of 1 MiB and more go straight between the caller's
 * memory and the file.  Every byte put or got goes through a 64-bit checksum (4 lanes of
 * multiply-rotate over 32-byte blocks, several GB/s; it detects corruption, not forgery).
 * The reader knows the file's size and refuses (ROSA_ERR_FORMAT) any read past its end, so a
 * count read from the file can be checked against the bytes left before memory is allocated. */
#ifndef ROSA_SESSION_IO_H
#define ROSA_SESSION_IO_H

#include <stddef.h>
#include <stdint.h>

typedef struct rosa__cks {
    uint64_t v[4];
    uint8_t tail[32];
    size_t ntail;
    uint64_t total;
} rosa__cks;

void rosa__cks_init(rosa__cks *c);
void rosa__cks_update(rosa__cks *c, const void *p, size_t n);
uint64_t rosa__cks_final(const rosa__cks *c); /* does not change c */

typedef struct rosa__sio {
    int fd;
    uint8_t *buf;
    size_t cap;     /* buffer bytes */
    size_t n, at;   /* writer: bytes buffered; reader: bytes buffered and the next one's index */
    uint64_t left;  /* reader: bytes of the file not yet handed to the caller */
    uint64_t done;  /* bytes put or got so far */
    rosa__cks ck;
    int err;        /* sticky: the first error */
} rosa__sio;

/* A writer on fd (open for writing) or a reader on fd whose file has `size` bytes.
 * 0 or ROSA_ERR_NOMEM. */
int rosa__sio_writer(rosa__sio *w, int fd);
int rosa__sio_reader(rosa__sio *r, int fd, uint64_t size);
/* Put n bytes (checksummed).  0 or ROSA_ERR_IO (sticky). */
int rosa__sio_put(rosa__sio *w, const void *p, size_t n);
/* Put the checksum of everything put so far, unchecksummed, and flush.  0 or ROSA_ERR_IO. */
int rosa__sio_finish(rosa__sio *w);
/* Get n bytes (checksummed).  0, ROSA_ERR_FORMAT (the file ends first) or ROSA_ERR_IO. */
int rosa__sio_get(rosa__sio *r, void *p, size_t n);
/* Reader: read the 8-byte trailer and compare it with the checksum of everything got; the
 * file must end there.  0 or ROSA_ERR_FORMAT. */
int rosa__sio_check_end(rosa__sio *r);
/* Frees the buffer (the fd stays open). */
void rosa__sio_close(rosa__sio *s);
#endif
