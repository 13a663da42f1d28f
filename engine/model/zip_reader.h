/* zip_reader.h: a read-only view of a zip archive held in memory (a file mapping).
 *
 * Just enough zip for PyTorch checkpoints: the central directory (zip64 included), lookup by
 * name, and access to stored (uncompressed) records in place.  Every offset and size read from
 * the archive is checked against the buffer before use; compressed or encrypted records are
 * refused when accessed. */
#ifndef ROSA_ZIP_READER_H
#define ROSA_ZIP_READER_H

#include <stddef.h>
#include <stdint.h>

typedef struct rosa__zip_entry {
    const char *name;     /* points into the central directory; not NUL-terminated */
    size_t name_len;
    uint64_t size;        /* uncompressed size */
    uint64_t csize;       /* compressed size (equals size for stored records) */
    uint64_t local_off;   /* offset of the local file header */
    uint32_t crc;
    uint16_t method;      /* 0 = stored */
    uint16_t flags;
} rosa__zip_entry;

typedef struct rosa__zip {
    const unsigned char *base;
    size_t len;
    uint64_t cd_off;          /* records must end before the central directory */
    rosa__zip_entry *e;       /* [n], sorted by name */
    int n;
    const char *path;         /* for messages; not owned */
} rosa__zip;

/* Upper bound on the number of records accepted in one archive. */
#define ROSA_ZIP_MAX_ENTRIES 4000000

/* Parse the end records and the central directory of base[0..len).  On failure returns < 0 with
 * a message naming path.  z->e is owned; release with rosa__zip_close. */
int rosa__zip_open(rosa__zip *z, const void *base, size_t len, const char *path, char *err,
                   size_t errlen);
void rosa__zip_close(rosa__zip *z);

/* Index of the record called name[0..name_len), or -1. */
int rosa__zip_find(const rosa__zip *z, const char *name, size_t name_len);

/* Locate the bytes of record i in place: checks its local header, that it is stored and not
 * encrypted, and that it lies inside the archive.  Returns 0 or < 0 with a message. */
int rosa__zip_data(const rosa__zip *z, int i, const unsigned char **data, char *err, size_t errlen);

/* The CRC-32 used by zip (IEEE 802.3, reflected). */
uint32_t rosa__crc32(uint32_t crc, const void *p, size_t n);

#endif
