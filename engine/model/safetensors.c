/* safetensors.c: reader for the safetensors format (8-byte header length, JSON header, data).
 *
 * The file is mapped read-only and tensors point into it.  Every offset, shape and size in the
 * header is checked against the file before it is used: a header that lies is refused, and so
 * are tensors whose byte ranges overlap. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "model/tensors.h"

/* A tensor's byte range in the data area, for the overlap check. */
typedef struct st_range {
    uint64_t o0, o1;
    const char *name;
} st_range;

static int cmp_range(const void *a, const void *b) {
    const st_range *x = a, *y = b;
    return (x->o0 > y->o0) - (x->o0 < y->o0);
}

/* Two tensors sharing bytes means the header lies (the format forbids it): refuse. */
static int check_overlap(st_range *r, int n, const char *path, char *err, size_t errlen) {
    qsort(r, (size_t)n, sizeof *r, cmp_range);
    uint64_t end = 0;
    const char *prev = NULL;
    for (int i = 0; i < n; i++) {
        if (r[i].o1 == r[i].o0) continue; /* empty tensors occupy nothing */
        if (prev && r[i].o0 < end)
            return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap in the data area",
                             path, prev, r[i].name);
        end = r[i].o1;
        prev = r[i].name;
    }
    return 0;
}

static int parse_dtype(const char *s, rosa_dtype *dt) {
    if (strcmp(s, "F32") == 0) *dt = ROSA_DT_F32;
    else if (strcmp(s, "F16") == 0) *dt = ROSA_DT_F16;
    else if (strcmp(s, "BF16") == 0) *dt = ROSA_DT_BF16;
    else return -1;
    return 0;
}

/* A JSON number that is an exact non-negative integer below 2^53. */
static int json_u64(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return -1;
    double d = j->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || floor(d) != d) return -1;
    *out = (uint64_t)d;
    return 0;
}

int rosa__safetensors_load(rosa__tensor_set *s, const char *path, char *err, size_t errlen) {
    void *map;
    size_t len;
    int rc = rosa__map_file(path, &map, &len, err, errlen);
    if (rc) return rc;
    if (rosa__tset_keep_map(s, map, len)) return rosa__err(err, errlen, ROSA_ERR_NOMEM, "%s: out of memory", path);
    const char *file = rosa__tset_intern_file(s, path);
    if (!file) return rosa__err(err, errlen, ROSA_ERR_NOMEM, "%s: out of memory", path);
    const unsigned char *b = map;
    if (len < 8) return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: truncated safetensors file (%zu bytes)", path, len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | b[i];
    if (hlen > ROSA_ST_MAX_HEADER || hlen > len - 8)
        return rosa__err(err, errlen, ROSA_ERR_FORMAT,
                         "%s: safetensors header length %llu exceeds the file (%zu bytes) or the %u-byte limit",
                         path, (unsigned long long)hlen, len, ROSA_ST_MAX_HEADER);
    cJSON *root = cJSON_ParseWithLength((const char *)b + 8, (size_t)hlen);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: safetensors header is not a JSON object", path);
    }
    const unsigned char *data = b + 8 + hlen;
    size_t dlen = len - 8 - (size_t)hlen;
    rc = 0;
    int nr = 0;
    st_range *ranges = malloc(((size_t)cJSON_GetArraySize(root) + 1) * sizeof *ranges);
    if (!ranges) {
        cJSON_Delete(root);
        return rosa__err(err, errlen, ROSA_ERR_NOMEM, "%s: out of memory", path);
    }
    for (cJSON *e = root->child; e; e = e->next) {
        const char *name = e->string ? e->string : "";
        if (strcmp(name, "__metadata__") == 0) continue;
        if (strlen(name) == 0 || strlen(name) > ROSA_MAX_NAME) {
            rc = rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: tensor name empty or longer than %d bytes", path, ROSA_MAX_NAME);
            break;
        }
        const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
        const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        if (!cJSON_IsObject(e) || !cJSON_IsString(jd) || !cJSON_IsArray(js) || !cJSON_IsArray(jo) ||
            cJSON_GetArraySize(jo) != 2) {
            rc = rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: tensor '%s': header entry needs dtype, shape and data_offsets[2]", path, name);
            break;
        }
        rosa__tensor t;
        memset(&t, 0, sizeof t);
        t.name = (char *)name;
        t.file = file;
        if (parse_dtype(jd->valuestring, &t.dtype)) {
            rc = rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED, "%s: tensor '%s': unsupported dtype %s (F32, F16 and BF16 are supported)", path, name, jd->valuestring);
            break;
        }
        int nd = cJSON_GetArraySize(js);
        if (nd > ROSA_MAX_DIMS) {
            rc = rosa__err(err, errlen, ROSA_ERR_UNSUPPORTED, "%s: tensor '%s': %d dimensions (at most %d)", path, name, nd, ROSA_MAX_DIMS);
            break;
        }
        t.ndim = nd;
        uint64_t numel = 1;
        int bad = 0;
        for (int i = 0; i < nd; i++) {
            uint64_t d;
            if (json_u64(cJSON_GetArrayItem(js, i), &d) || d > (1ull << 40)) { bad = 1; break; }
            t.shape[i] = (int64_t)d;
            if (d && numel > (1ull << 50) / d) { bad = 1; break; }
            numel *= d;
        }
        uint64_t o0, o1;
        if (bad || json_u64(cJSON_GetArrayItem(jo, 0), &o0) || json_u64(cJSON_GetArrayItem(jo, 1), &o1)) {
            rc = rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: tensor '%s': shape or data_offsets are not valid sizes", path, name);
            break;
        }
        uint64_t need = numel * rosa__dtype_size(t.dtype);
        if (o1 < o0 || o1 > dlen || o1 - o0 != need) {
            rc = rosa__err(err, errlen, ROSA_ERR_FORMAT,
                           "%s: tensor '%s': data_offsets [%llu, %llu) do not fit the %zu data bytes or the shape (%llu bytes)",
                           path, name, (unsigned long long)o0, (unsigned long long)o1, dlen, (unsigned long long)need);
            break;
        }
        t.data = data + o0;
        t.nbytes = (size_t)need;
        if (((uintptr_t)t.data % rosa__dtype_size(t.dtype)) != 0) {
            /* misaligned data: keep an aligned private copy */
            void *c = malloc(need ? need : 1);
            if (!c || rosa__tset_keep_owned(s, c)) { free(c); rc = rosa__err(err, errlen, ROSA_ERR_NOMEM, "%s: out of memory", path); break; }
            memcpy(c, t.data, need);
            t.data = c;
        }
        if (rosa__tset_find(s, name)) {
            rc = rosa__err(err, errlen, ROSA_ERR_FORMAT, "%s: tensor '%s' appears twice", path, name);
            break;
        }
        if (rosa__tset_add(s, &t)) { rc = rosa__err(err, errlen, ROSA_ERR_NOMEM, "%s: out of memory", path); break; }
        ranges[nr].o0 = o0;
        ranges[nr].o1 = o1;
        ranges[nr].name = s->t[s->n - 1].name;
        nr++;
    }
    if (rc == 0) rc = check_overlap(ranges, nr, path, err, errlen);
    free(ranges);
    cJSON_Delete(root);
    return rc;
}
