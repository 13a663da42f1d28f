/* tensors.h: a set of named tensors backed by memory-mapped checkpoint files.
 *
 * Every checkpoint reader (safetensors, PyTorch .pt zip) appends into one rosa__tensor_set;
 * the model loader then looks tensors up by name.  Data pointers point into read-only file
 * mappings (no copy), so resident memory stays close to the checkpoint size. */
#ifndef ROSA_TENSORS_H
#define ROSA_TENSORS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { ROSA_DT_F32 = 0, ROSA_DT_F16 = 1, ROSA_DT_BF16 = 2 } rosa_dtype;

#define ROSA_MAX_DIMS 4
#define ROSA_MAX_TENSORS 1000000   /* per set: a sanity bound for headers that lie */

typedef struct rosa__tensor {
    char *name;                 /* owned */
    rosa_dtype dtype;
    int ndim;
    int64_t shape[ROSA_MAX_DIMS];
    const void *data;           /* points into a mapping (or owned copy), nbytes long */
    size_t nbytes;
    const char *file;           /* path of the file it came from (owned by the set) */
} rosa__tensor;

typedef struct rosa__tensor_set {
    rosa__tensor *t;
    int n, cap;
    /* resources to release: mappings and owned buffers */
    void **maps;
    size_t *map_len;
    int nmaps, capmaps;
    void **owned;
    int nowned, capowned;
    char **files;
    int nfiles, capfiles;
} rosa__tensor_set;

size_t rosa__dtype_size(rosa_dtype dt);
const char *rosa__dtype_name(rosa_dtype dt);
int64_t rosa__tensor_numel(const rosa__tensor *t);

void rosa__tset_init(rosa__tensor_set *s);
void rosa__tset_free(rosa__tensor_set *s);
/* Linear search is fine: called once per tensor at load. Returns NULL if absent. */
const rosa__tensor *rosa__tset_find(const rosa__tensor_set *s, const char *name);
/* Internal helpers for readers. Return 0 or ROSA_ERR_NOMEM. */
int rosa__tset_add(rosa__tensor_set *s, const rosa__tensor *t);  /* copies name */
int rosa__tset_keep_map(rosa__tensor_set *s, void *p, size_t len);
int rosa__tset_keep_owned(rosa__tensor_set *s, void *p);
const char *rosa__tset_intern_file(rosa__tensor_set *s, const char *path);

/* Map a whole file read-only. Returns 0, or ROSA_ERR_IO with a message naming the file. */
int rosa__map_file(const char *path, void **p, size_t *len, char *err, size_t errlen);

/* Readers: append every tensor of the file to s. On error return < 0 with a message naming
 * the file (and tensor); s may hold a partial result the caller frees. */
int rosa__safetensors_load(rosa__tensor_set *s, const char *path, char *err, size_t errlen);
int rosa__pt_load(rosa__tensor_set *s, const char *path, char *err, size_t errlen);

/* Size limits for untrusted headers */
#define ROSA_ST_MAX_HEADER (100u << 20)   /* safetensors JSON header: 100 MiB */
#define ROSA_MAX_NAME 1024

#endif
