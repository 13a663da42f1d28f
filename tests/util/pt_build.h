/* pt_build.h: writers of torch.save-style checkpoints for the reader tests.
 *
 * A zip writer that lays records out as torch's PyTorchStreamWriter (miniz) does -- stored
 * records, 64-byte aligned data behind an "FB" padding field, data descriptors, zip64 end
 * records, zip64 extras for sizes/offsets past 4 GiB -- and a pickle builder emitting the opcode
 * sequence torch.save produces for a dict of tensors.  Tests use them to make good files and
 * files that lie in exactly one place. */
#ifndef ROSA_PT_BUILD_H
#define ROSA_PT_BUILD_H
#include <stddef.h>
#include <stdint.h>

/* ---- growable byte buffer (aborts on out of memory: test code only) ---- */
typedef struct bb {
    unsigned char *p;
    size_t n, cap;
} bb;
void bb_put(bb *b, const void *d, size_t n);
void bb_u8(bb *b, unsigned v);
void bb_le(bb *b, uint64_t v, int k); /* k-byte little-endian */
void bb_str(bb *b, const char *s);
void bb_free(bb *b);

/* ---- zip ---- */
typedef struct zrec {
    const char *name;
    const unsigned char *data; /* NULL: len bytes left as a hole (zeros; sparse in a file) */
    uint64_t len;
    int method;                /* method field written in both headers (data stays stored) */
    int64_t size_lie;          /* added to the sizes stated in the central directory */
} zrec;

void zb_build(bb *out, const zrec *r, int n);
/* Same layout written to path with pwrite, holes left sparse.  Returns 0 or -1. */
int zb_write_file(const char *path, const zrec *r, int n);

/* ---- pickle ---- */
void pk_int(bb *b, int64_t v);                 /* BININT1/BININT2/BININT/LONG1 as CPython picks */
void pk_str(bb *b, const char *s);             /* BINUNICODE */
void pk_global(bb *b, const char *mod, const char *name);

typedef struct tspec {
    const char *name;
    const char *cls;   /* "FloatStorage", "HalfStorage", "BFloat16Storage", ... */
    const char *key;
    int64_t st_numel, offset;
    int ndim;
    int64_t shape[8], stride[8]; /* stride[0] == -1: contiguous strides */
    int extra_meta;    /* 1: pass a non-empty 7th (metadata) argument */
} tspec;

/* One dict entry: name, _rebuild_tensor_v2(storage persid, offset, size, stride, False,
 * OrderedDict()). */
void pk_tensor(bb *b, const tspec *t);
/* A whole protocol-2 data.pkl: a dict of these tensors. */
void pk_dict(bb *b, const tspec *t, int n);
#endif
