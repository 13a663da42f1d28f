/* pt_reader.c: PyTorch checkpoints (torch.save of a dict of tensors, zip format of torch >= 1.6).
 *
 * The file is mapped; zip_reader.c finds `<archive>/data.pkl` and the storage records
 * `<archive>/data/<key>`; pickle_vm.c turns data.pkl into an inert object graph; this file maps
 * that graph onto tensors: each value must be _rebuild_tensor_v2(storage, offset, size, stride,
 * requires_grad, hooks[, metadata]) over a ('storage', <Type>Storage, key, location, numel)
 * persistent id.  Tensors point into the mapping (copied only when misaligned), exactly like
 * safetensors.c, and every number the pickle states is checked against the records. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/errors.h"
#include "model/pickle_vm.h"
#include "model/tensors.h"
#include "model/zip_reader.h"

/* ---- the globals data.pkl may name; nothing else is resolvable ---- */

enum {
    G_REBUILD_TENSOR, G_REBUILD_PARAMETER, G_ORDERED_DICT,
    G_FLOAT, G_HALF, G_BFLOAT16, /* supported storage classes: the order of rosa_dtype */
    G_FIRST_UNSUPPORTED_STORAGE
};

static const rosa__pk_global pt_globals[] = {
    {"torch._utils", "_rebuild_tensor_v2", ROSA__PK_G_CALLABLE},
    {"torch._utils", "_rebuild_parameter", ROSA__PK_G_CALLABLE},
    {"collections", "OrderedDict", ROSA__PK_G_DICT_TYPE},
    {"torch", "FloatStorage", ROSA__PK_G_VALUE},
    {"torch", "HalfStorage", ROSA__PK_G_VALUE},
    {"torch", "BFloat16Storage", ROSA__PK_G_VALUE},
    /* known so that the refusal can name the tensor and its type */
    {"torch", "DoubleStorage", ROSA__PK_G_VALUE},
    {"torch", "LongStorage", ROSA__PK_G_VALUE},
    {"torch", "IntStorage", ROSA__PK_G_VALUE},
    {"torch", "ShortStorage", ROSA__PK_G_VALUE},
    {"torch", "CharStorage", ROSA__PK_G_VALUE},
    {"torch", "ByteStorage", ROSA__PK_G_VALUE},
    {"torch", "BoolStorage", ROSA__PK_G_VALUE},
    {"torch", "ComplexFloatStorage", ROSA__PK_G_VALUE},
    {"torch", "ComplexDoubleStorage", ROSA__PK_G_VALUE},
};
#define N_GLOBALS ((int)(sizeof pt_globals / sizeof pt_globals[0]))

#define MAX_DIM_SIZE (1ll << 40)
#define MAX_NUMEL (1ll << 50)
#define MAX_KEY_LEN 256

typedef struct storage_seen {
    int dtype;      /* -1: not referenced yet */
    int64_t numel;
} storage_seen;

typedef struct pt_ctx {
    rosa__tensor_set *s;
    const char *path, *file;
    rosa__zip z;
    rosa__pickle pk;
    const char *prefix;   /* archive folder, without the slash */
    size_t prefix_len;
    storage_seen *seen;   /* [z.n], by record index */
    char *err;
    size_t errlen;
} pt_ctx;

static const rosa__pk_obj *obj(const pt_ctx *c, int32_t id) { return &c->pk.obj[id]; }

static int is_int(const rosa__pk_obj *o) { return o->kind == ROSA__PK_INT; }

static int str_eq(const rosa__pk_obj *o, const char *s) {
    return o->kind == ROSA__PK_STR && o->u.str.len == strlen(s) && memcmp(o->u.str.s, s, o->u.str.len) == 0;
}

/* ---- archive layout ---- */

/* The archive folder is whatever folder holds data.pkl (torch 1.x: the file stem, 2.x:
 * usually "archive"); exactly one top-level folder may. */
static int find_archive(pt_ctx *c, int *pkl) {
    int found = 0;
    for (int i = 0; i < c->z.n; i++) {
        const rosa__zip_entry *e = &c->z.e[i];
        static const char tail[] = "/data.pkl";
        size_t tl = sizeof tail - 1;
        if (e->name_len <= tl || memcmp(e->name + e->name_len - tl, tail, tl) != 0) continue;
        if (memchr(e->name, '/', e->name_len - tl)) continue;
        if (found++) {
            return rosa__err(c->err, c->errlen, ROSA_ERR_FORMAT,
                             "%s: several top-level folders hold a data.pkl; not a single torch.save archive", c->path);
        }
        *pkl = i;
        c->prefix = e->name;
        c->prefix_len = e->name_len - tl;
        if (c->prefix_len > MAX_KEY_LEN)
            return rosa__err(c->err, c->errlen, ROSA_ERR_FORMAT, "%s: archive folder name longer than %d bytes", c->path, MAX_KEY_LEN);
    }
    if (!found)
        return rosa__err(c->err, c->errlen, ROSA_ERR_FORMAT,
                         "%s: zip archive has no <archive>/data.pkl record; not a torch.save checkpoint", c->path);
    return 0;
}

/* Record prefix/<rest>, or -1. */
static int find_record(const pt_ctx *c, const char *rest, size_t rest_len) {
    char name[MAX_KEY_LEN + 512];
    if (c->prefix_len + 1 + rest_len > sizeof name) return -1;
    memcpy(name, c->prefix, c->prefix_len);
    name[c->prefix_len] = '/';
    memcpy(name + c->prefix_len + 1, rest, rest_len);
    return rosa__zip_find(&c->z, name, c->prefix_len + 1 + rest_len);
}

static int check_byteorder(pt_ctx *c) {
    int i = find_record(c, "byteorder", 9);
    if (i < 0) return 0; /* torch < 2.1 wrote none: always little-endian */
    const unsigned char *d;
    int rc = rosa__zip_data(&c->z, i, &d, c->err, c->errlen);
    if (rc) return rc;
    size_t n = (size_t)c->z.e[i].size;
    if (n == 6 && memcmp(d, "little", 6) == 0) return 0;
    if (n == 3 && memcmp(d, "big", 3) == 0)
        return rosa__err(c->err, c->errlen, ROSA_ERR_UNSUPPORTED,
                         "%s: checkpoint was saved on a big-endian machine (byteorder 'big'); only little-endian is supported", c->path);
    char q[64];
    return rosa__err(c->err, c->errlen, ROSA_ERR_FORMAT, "%s: byteorder record holds '%s' (want 'little')", c->path,
                     rosa__quote(q, sizeof q, (const char *)d, n < 32 ? n : 32));
}

/* ---- one tensor ---- */

#define TERR(code, ...) rosa__err(c->err, c->errlen, code, __VA_ARGS__)

static int int_tuple(const pt_ctx *c, const rosa__pk_obj *t, int64_t *out, int *n) {
    if (t->kind != ROSA__PK_TUPLE) return -1;
    *n = t->n;
    for (int i = 0; i < t->n && i < ROSA_MAX_DIMS; i++) {
        const rosa__pk_obj *o = rosa__pk_item(&c->pk, t, i);
        if (!is_int(o)) return -1;
        out[i] = o->u.i;
    }
    for (int i = ROSA_MAX_DIMS; i < t->n; i++)
        if (!is_int(rosa__pk_item(&c->pk, t, i))) return -1;
    return 0;
}

static void fmt_dims(char *buf, size_t cap, const int64_t *d, int n) {
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i ? ", " : "", (long long)d[i]);
}

static int add_tensor(pt_ctx *c, int idx, const rosa__pk_obj *key, const rosa__pk_obj *val) {
    const char *P = c->path;
    if (key->kind != ROSA__PK_STR)
        return TERR(ROSA_ERR_FORMAT, "%s: entry %d of the top-level dict has a key that is not a string", P, idx);
    char q[ROSA_MAX_NAME + 4]; /* the name as messages show it */
    rosa__quote(q, sizeof q, key->u.str.s, key->u.str.len);
    if (key->u.str.len == 0 || key->u.str.len > ROSA_MAX_NAME || memchr(key->u.str.s, 0, key->u.str.len))
        return TERR(ROSA_ERR_FORMAT, "%s: tensor name '%s' (%zu bytes) is empty, longer than %d bytes or holds a NUL byte", P,
                    rosa__quote(q, 64, key->u.str.s, key->u.str.len), key->u.str.len, ROSA_MAX_NAME);
    char name[ROSA_MAX_NAME + 1];
    memcpy(name, key->u.str.s, key->u.str.len);
    name[key->u.str.len] = 0;

    /* nn.Parameter: _rebuild_parameter(tensor, requires_grad, hooks) */
    if (val->kind == ROSA__PK_CALL && val->u.call.global == G_REBUILD_PARAMETER) {
        const rosa__pk_obj *a = obj(c, val->u.call.args);
        if (a->n < 1) return TERR(ROSA_ERR_FORMAT, "%s: tensor '%s': _rebuild_parameter without a tensor", P, q);
        val = rosa__pk_item(&c->pk, a, 0);
    }
    if (val->kind != ROSA__PK_CALL || val->u.call.global != G_REBUILD_TENSOR)
        return TERR(ROSA_ERR_UNSUPPORTED, "%s: tensor '%s': value is not a plain tensor (torch._utils._rebuild_tensor_v2)", P, q);
    const rosa__pk_obj *args = obj(c, val->u.call.args);
    if (args->n != 6 && args->n != 7)
        return TERR(ROSA_ERR_FORMAT, "%s: tensor '%s': _rebuild_tensor_v2 takes 6 or 7 arguments, got %d", P, q, args->n);
    const rosa__pk_obj *a_st = rosa__pk_item(&c->pk, args, 0), *a_off = rosa__pk_item(&c->pk, args, 1),
                       *a_size = rosa__pk_item(&c->pk, args, 2), *a_stride = rosa__pk_item(&c->pk, args, 3),
                       *a_grad = rosa__pk_item(&c->pk, args, 4), *a_hooks = rosa__pk_item(&c->pk, args, 5);
    if (args->n == 7) {
        const rosa__pk_obj *meta = rosa__pk_item(&c->pk, args, 6);
        if (meta->kind != ROSA__PK_DICT || meta->n != 0)
            return TERR(ROSA_ERR_UNSUPPORTED, "%s: tensor '%s': tensor metadata (conjugate/negative bits) is not supported", P, q);
    }
    if (a_grad->kind != ROSA__PK_BOOL || (a_hooks->kind != ROSA__PK_DICT && a_hooks->kind != ROSA__PK_NONE))
        return TERR(ROSA_ERR_FORMAT, "%s: tensor '%s': malformed requires_grad or backward hooks argument", P, q);

    /* the storage: ('storage', <Type>Storage, key, location, numel) */
    const rosa__pk_obj *pid = a_st->kind == ROSA__PK_PERSID ? obj(c, a_st->u.pid) : NULL;
    if (!pid || pid->kind != ROSA__PK_TUPLE || pid->n != 5 || !str_eq(rosa__pk_item(&c->pk, pid, 0), "storage") ||
        rosa__pk_item(&c->pk, pid, 1)->kind != ROSA__PK_GLOBAL || rosa__pk_item(&c->pk, pid, 2)->kind != ROSA__PK_STR ||
        rosa__pk_item(&c->pk, pid, 3)->kind != ROSA__PK_STR || !is_int(rosa__pk_item(&c->pk, pid, 4)))
        return TERR(ROSA_ERR_FORMAT, "%s: tensor '%s': storage reference is not ('storage', type, key, location, numel)", P, q);
    int g = rosa__pk_item(&c->pk, pid, 1)->u.global;
    const rosa__pk_obj *skey = rosa__pk_item(&c->pk, pid, 2);
    int64_t st_numel = rosa__pk_item(&c->pk, pid, 4)->u.i;
    if (g < G_FLOAT || g >= N_GLOBALS)
        return TERR(ROSA_ERR_FORMAT, "%s: tensor '%s': storage type %s.%s is not a storage class", P, q,
                    pt_globals[g].module, pt_globals[g].name);
    if (g >= G_FIRST_UNSUPPORTED_STORAGE)
        return TERR(ROSA_ERR_UNSUPPORTED, "%s: tensor '%s': unsupported storage dtype torch.%s (FloatStorage, HalfStorage and BFloat16Storage are supported)",
                    P, q, pt_globals[g].name);
    rosa__tensor t;
    memset(&t, 0, sizeof t);
    t.name = name;
    t.file = c->file;
    t.dtype = (rosa_dtype)(g - G_FLOAT);
    size_t es = rosa__dtype_size(t.dtype);
    if (st_numel < 0 || st_numel > MAX_NUMEL)
        return TERR(ROSA_ERR_FORMAT, "%s: tensor '%s': storage numel %lld is not a valid size", P, q, (long long)st_numel);

    /* shape, stride, offset */
    int64_t size[ROSA_MAX_DIMS], stride[ROSA_MAX_DIMS];
    int nd, nds;
    if (int_tuple(c, a_size, size, &nd) || int_tuple(c, a_stride, stride, &nds) || !is_int(a_off))
        return TERR(ROSA_ERR_FORMAT, "%s: tensor '%s': size, stride or storage offset is not made of integers", P, q);
    if (nd > ROSA_MAX_DIMS)
        return TERR(ROSA_ERR_UNSUPPORTED, "%s: tensor '%s': %d dimensions (at most %d)", P, q, nd, ROSA_MAX_DIMS);
    if (nds != nd)
        return TERR(ROSA_ERR_FORMAT, "%s: tensor '%s': %d sizes but %d strides", P, q, nd, nds);
    int64_t numel = 1;
    for (int i = 0; i < nd; i++) {
        if (size[i] < 0 || size[i] > MAX_DIM_SIZE || (size[i] && numel > MAX_NUMEL / size[i]))
            return TERR(ROSA_ERR_FORMAT, "%s: tensor '%s': size %lld of dimension %d is not valid", P, q, (long long)size[i], i);
        numel *= size[i];
        t.shape[i] = size[i];
    }
    t.ndim = nd;
    if (numel > 0) {
        int64_t want = 1;
        for (int i = nd - 1; i >= 0; i--) {
            if (size[i] != 1 && stride[i] != want) {
                char sz[160], sd[160];
                fmt_dims(sz, sizeof sz, size, nd);
                fmt_dims(sd, sizeof sd, stride, nd);
                return TERR(ROSA_ERR_UNSUPPORTED, "%s: tensor '%s' is not contiguous (size [%s], stride [%s]); save it after .contiguous()",
                            P, q, sz, sd);
            }
            want *= size[i];
        }
    }
    int64_t off = a_off->u.i;
    if (off < 0 || off > st_numel || numel > st_numel - off)
        return TERR(ROSA_ERR_FORMAT, "%s: tensor '%s': storage offset %lld + %lld elements exceed the storage's %lld elements",
                    P, q, (long long)off, (long long)numel, (long long)st_numel);

    /* the record holding the storage */
    char kq[MAX_KEY_LEN];
    rosa__quote(kq, sizeof kq, skey->u.str.s, skey->u.str.len);
    char rest[MAX_KEY_LEN + 8];
    if (skey->u.str.len == 0 || skey->u.str.len > MAX_KEY_LEN)
        return TERR(ROSA_ERR_FORMAT, "%s: tensor '%s': storage key '%s' is empty or too long", P, q, kq);
    memcpy(rest, "data/", 5);
    memcpy(rest + 5, skey->u.str.s, skey->u.str.len);
    int ri = find_record(c, rest, 5 + skey->u.str.len);
    if (ri < 0)
        return TERR(ROSA_ERR_FORMAT, "%s: tensor '%s': storage record '%.*s/data/%s' is missing", P, q,
                    (int)c->prefix_len, c->prefix, kq);
    storage_seen *sn = &c->seen[ri];
    if (sn->dtype >= 0 && (sn->dtype != (int)t.dtype || sn->numel != st_numel))
        return TERR(ROSA_ERR_FORMAT, "%s: tensor '%s': storage '%s' was described with another dtype or numel by an earlier tensor",
                    P, q, kq);
    sn->dtype = (int)t.dtype;
    sn->numel = st_numel;
    const unsigned char *rec;
    int rc = rosa__zip_data(&c->z, ri, &rec, c->err, c->errlen);
    if (rc) {
        size_t l = strlen(c->err ? c->err : "");
        if (c->err && l + 1 < c->errlen) snprintf(c->err + l, c->errlen - l, " (storage of tensor '%s')", q);
        return rc;
    }
    uint64_t rec_size = c->z.e[ri].size;
    if (rec_size != (uint64_t)st_numel * es)
        return TERR(ROSA_ERR_FORMAT, "%s: tensor '%s': storage record '%s' holds %llu bytes but %lld %s elements need %llu",
                    P, q, kq, (unsigned long long)rec_size, (long long)st_numel, rosa__dtype_name(t.dtype),
                    (unsigned long long)st_numel * es);
    t.data = rec + (size_t)off * es;
    t.nbytes = (size_t)numel * es;
    if ((uintptr_t)t.data % es != 0) {
        void *cp = malloc(t.nbytes ? t.nbytes : 1);
        if (!cp || rosa__tset_keep_owned(c->s, cp)) {
            free(cp);
            return TERR(ROSA_ERR_NOMEM, "%s: out of memory", P);
        }
        memcpy(cp, t.data, t.nbytes);
        t.data = cp;
    }
    if (rosa__tset_find(c->s, name)) return TERR(ROSA_ERR_FORMAT, "%s: tensor '%s' appears twice", P, q);
    rc = rosa__tset_add(c->s, &t);
    if (rc == ROSA_ERR_LIMIT) return TERR(rc, "%s: tensor '%s': more than %d tensors", P, q, ROSA_MAX_TENSORS);
    if (rc) return TERR(rc, "%s: out of memory", P);
    return 0;
}

/* ---- the file ---- */

static int load(pt_ctx *c, const unsigned char *b, size_t len) {
    int rc = rosa__zip_open(&c->z, b, len, c->path, c->err, c->errlen);
    if (rc) {
        if (len >= 2 && b[0] == 0x80 && b[1] >= 2 && b[1] <= 5)
            return TERR(ROSA_ERR_UNSUPPORTED, "%s: legacy (pre-1.6, non-zip) torch.save format is not supported; "
                        "re-save it with a current torch", c->path);
        return rc;
    }
    int pkl = -1;
    if ((rc = find_archive(c, &pkl)) || (rc = check_byteorder(c))) return rc;
    const unsigned char *pb;
    if ((rc = rosa__zip_data(&c->z, pkl, &pb, c->err, c->errlen))) return rc;
    size_t pn = (size_t)c->z.e[pkl].size;
    char what[4096 + 300];
    snprintf(what, sizeof what, "%s: %.*s/data.pkl", c->path, (int)(c->prefix_len < 200 ? c->prefix_len : 200), c->prefix);
    if (pn > ROSA_PK_MAX_BYTES)
        return TERR(ROSA_ERR_LIMIT, "%s: pickle of %zu bytes exceeds the %u-byte limit", what, pn, ROSA_PK_MAX_BYTES);
    if (rosa__crc32(0, pb, pn) != c->z.e[pkl].crc)
        return TERR(ROSA_ERR_FORMAT, "%s: CRC mismatch (the archive is corrupt)", what);
    if ((rc = rosa__pickle_run(&c->pk, pb, pn, pt_globals, N_GLOBALS, what, c->err, c->errlen))) return rc;

    const rosa__pk_obj *root = obj(c, c->pk.root);
    if (root->kind != ROSA__PK_DICT)
        return TERR(ROSA_ERR_UNSUPPORTED, "%s: the saved object is not a dict of tensors", c->path);
    if (root->n > ROSA_MAX_TENSORS)
        return TERR(ROSA_ERR_LIMIT, "%s: %d entries exceed the %d-tensor limit", c->path, root->n, ROSA_MAX_TENSORS);
    c->seen = malloc((size_t)(c->z.n ? c->z.n : 1) * sizeof *c->seen);
    if (!c->seen) return TERR(ROSA_ERR_NOMEM, "%s: out of memory", c->path);
    for (int i = 0; i < c->z.n; i++) c->seen[i].dtype = -1;
    for (int32_t i = 0; i < root->n; i++) {
        /* re-read root each time: nothing reallocates the graph now, but stay index-based */
        const rosa__pk_obj *r = obj(c, c->pk.root);
        if ((rc = add_tensor(c, i, obj(c, r->u.dict.kv[2 * i]), obj(c, r->u.dict.kv[2 * i + 1])))) return rc;
    }
    return 0;
}

int rosa__pt_load(rosa__tensor_set *s, const char *path, char *err, size_t errlen) {
    void *map;
    size_t len;
    int rc = rosa__map_file(path, &map, &len, err, errlen);
    if (rc) return rc;
    if (rosa__tset_keep_map(s, map, len)) {
        munmap(map, len);
        return rosa__err(err, errlen, ROSA_ERR_NOMEM, "%s: out of memory", path);
    }
    pt_ctx c;
    memset(&c, 0, sizeof c);
    c.s = s;
    c.path = path;
    c.err = err;
    c.errlen = errlen;
    c.pk.root = -1;
    c.file = rosa__tset_intern_file(s, path);
    if (!c.file) return rosa__err(err, errlen, ROSA_ERR_NOMEM, "%s: out of memory", path);
    rc = load(&c, map, len);
    rosa__pickle_free(&c.pk);
    rosa__zip_close(&c.z);
    free(c.seen);
    return rc;
}
