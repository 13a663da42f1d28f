/* tensor_set.c: the named-tensor table shared by all checkpoint readers, and file mapping. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/errors.h"
#include "model/tensors.h"

size_t rosa__dtype_size(rosa_dtype dt) { return dt == ROSA_DT_F32 ? 4 : 2; }

const char *rosa__dtype_name(rosa_dtype dt) {
    switch (dt) {
    case ROSA_DT_F32: return "f32";
    case ROSA_DT_F16: return "f16";
    case ROSA_DT_BF16: return "bf16";
    }
    return "?";
}

int64_t rosa__tensor_numel(const rosa__tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

void rosa__tset_init(rosa__tensor_set *s) { memset(s, 0, sizeof *s); }

void rosa__tset_free(rosa__tensor_set *s) {
    for (int i = 0; i < s->n; i++) free(s->t[i].name);
    free(s->t);
    for (int i = 0; i < s->nmaps; i++) munmap(s->maps[i], s->map_len[i]);
    free(s->maps);
    free(s->map_len);
    for (int i = 0; i < s->nowned; i++) free(s->owned[i]);
    free(s->owned);
    for (int i = 0; i < s->nfiles; i++) free(s->files[i]);
    free(s->files);
    memset(s, 0, sizeof *s);
}

const rosa__tensor *rosa__tset_find(const rosa__tensor_set *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->t[i].name, name) == 0) return &s->t[i];
    return NULL;
}

static int grow(void **p, int *cap, int need, size_t elem) {
    if (need <= *cap) return 0;
    int nc = *cap ? *cap * 2 : 16;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q) return ROSA_ERR_NOMEM;
    *p = q;
    *cap = nc;
    return 0;
}

int rosa__tset_add(rosa__tensor_set *s, const rosa__tensor *t) {
    if (s->n >= ROSA_MAX_TENSORS) return ROSA_ERR_LIMIT;
    if (grow((void **)&s->t, &s->cap, s->n + 1, sizeof *s->t)) return ROSA_ERR_NOMEM;
    char *name = strdup(t->name);
    if (!name) return ROSA_ERR_NOMEM;
    s->t[s->n] = *t;
    s->t[s->n].name = name;
    s->n++;
    return 0;
}

int rosa__tset_keep_map(rosa__tensor_set *s, void *p, size_t len) {
    int cap = s->capmaps;
    if (grow((void **)&s->maps, &cap, s->nmaps + 1, sizeof *s->maps)) return ROSA_ERR_NOMEM;
    int cap2 = s->capmaps;
    if (grow((void **)&s->map_len, &cap2, s->nmaps + 1, sizeof *s->map_len)) return ROSA_ERR_NOMEM;
    s->capmaps = cap;
    s->maps[s->nmaps] = p;
    s->map_len[s->nmaps] = len;
    s->nmaps++;
    return 0;
}

int rosa__tset_keep_owned(rosa__tensor_set *s, void *p) {
    if (grow((void **)&s->owned, &s->capowned, s->nowned + 1, sizeof *s->owned))
        return ROSA_ERR_NOMEM;
    s->owned[s->nowned++] = p;
    return 0;
}

const char *rosa__tset_intern_file(rosa__tensor_set *s, const char *path) {
    for (int i = 0; i < s->nfiles; i++)
        if (strcmp(s->files[i], path) == 0) return s->files[i];
    if (grow((void **)&s->files, &s->capfiles, s->nfiles + 1, sizeof *s->files)) return NULL;
    char *c = strdup(path);
    if (!c) return NULL;
    s->files[s->nfiles++] = c;
    return c;
}

int rosa__map_file(const char *path, void **p, size_t *len, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return rosa__err(err, errlen, ROSA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return rosa__err(err, errlen, ROSA_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: file is empty", path);
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return rosa__err(err, errlen, ROSA_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
    *p = m;
    *len = (size_t)st.st_size;
    return 0;
}
