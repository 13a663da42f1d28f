/* pickle_vm.c: the restricted pickle interpreter (see pickle_vm.h).
 *
 * One pass over the bytes, no recursion: each opcode pushes or pops object ids on a bounded
 * stack.  The opcode set is what CPython's pickler emits at protocols 2-5 for torch.save of a
 * dict of tensors; anything else (INST, OBJ, NEWOBJ, EXT*, BUILD on non-dicts, lists, floats,
 * bytes) is refused by name rather than guessed at. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "model/pickle_vm.h"

typedef struct vm {
    rosa__pickle *pk;
    const unsigned char *p;
    size_t n, pc, at;           /* bytes, read position, start of the current opcode */
    int32_t *stack;
    int32_t sp, capstack;
    int32_t marks[ROSA_PK_MAX_MARKS];
    int nmarks;
    int32_t scalar[3];          /* shared None, False, True objects; -1 until first used */
    int32_t *memo;              /* -1: unset */
    size_t capmemo, nmemo_set;
    const rosa__pk_global *globals;
    int nglobals;
    const char *what;
    char *err;
    size_t errlen;
} vm;

#define FAIL(code, ...) return vm_fail(v, code, __VA_ARGS__)

static int vm_fail(vm *v, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int vm_fail(vm *v, int code, const char *fmt, ...) {
    if (v->err && v->errlen) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(v->err, v->errlen, "%s: pickle byte %zu: %s", v->what, v->at, msg);
    }
    return code;
}

/* ---- allocation ---- */

static int grow(void **p, int32_t *cap, int64_t need, size_t elem) {
    if (need <= *cap) return 0;
    int64_t nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    if (nc > INT32_MAX) return -1;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q) return -1;
    *p = q;
    *cap = (int32_t)nc;
    return 0;
}

static int32_t new_obj(vm *v, int kind) {
    rosa__pickle *pk = v->pk;
    if (pk->nobj >= ROSA_PK_MAX_OBJECTS) return -2;
    if (grow((void **)&pk->obj, &pk->capobj, (int64_t)pk->nobj + 1, sizeof *pk->obj)) return -1;
    rosa__pk_obj *o = &pk->obj[pk->nobj];
    memset(o, 0, sizeof *o);
    o->kind = (uint8_t)kind;
    return pk->nobj++;
}

/* ---- stack ---- */

static int push(vm *v, int32_t id) {
    if (id == -2) FAIL(ROSA_ERR_LIMIT, "more than %d objects", ROSA_PK_MAX_OBJECTS);
    if (id < 0) FAIL(ROSA_ERR_NOMEM, "out of memory");
    if (v->sp >= ROSA_PK_MAX_STACK) FAIL(ROSA_ERR_LIMIT, "stack deeper than %d entries", ROSA_PK_MAX_STACK);
    if (grow((void **)&v->stack, &v->capstack, (int64_t)v->sp + 1, sizeof *v->stack))
        FAIL(ROSA_ERR_NOMEM, "out of memory");
    v->stack[v->sp++] = id;
    return 0;
}

/* Entries above the innermost MARK (pickle may not pop through a mark). */
static int32_t avail(const vm *v) { return v->sp - (v->nmarks ? v->marks[v->nmarks - 1] : 0); }

static int pop(vm *v, int32_t *id) {
    if (avail(v) < 1) FAIL(ROSA_ERR_FORMAT, "stack underflow");
    *id = v->stack[--v->sp];
    return 0;
}

static int pop_mark(vm *v, int32_t *base) {
    if (v->nmarks == 0) FAIL(ROSA_ERR_FORMAT, "no MARK to pop to");
    *base = v->marks[--v->nmarks];
    return 0;
}

static int depth_ok(vm *v, int32_t parent, int32_t child) {
    rosa__pk_obj *o = v->pk->obj;
    int d = o[child].depth + 1;
    if (d > ROSA_PK_MAX_DEPTH) FAIL(ROSA_ERR_LIMIT, "objects nested deeper than %d", ROSA_PK_MAX_DEPTH);
    if (d > o[parent].depth) o[parent].depth = (uint8_t)d;
    return 0;
}

/* Make a tuple of the top k stack entries (already checked to be available). */
static int make_tuple(vm *v, int32_t k) {
    rosa__pickle *pk = v->pk;
    int32_t t = new_obj(v, ROSA__PK_TUPLE);
    if (t < 0) return push(v, t); /* reports the limit or out of memory */
    if (grow((void **)&pk->items, &pk->capitems, (int64_t)pk->nitems + k, sizeof *pk->items))
        FAIL(ROSA_ERR_NOMEM, "out of memory");
    pk->obj[t].n = k;
    pk->obj[t].u.first = pk->nitems;
    for (int32_t i = 0; i < k; i++) {
        int32_t id = v->stack[v->sp - k + i];
        pk->items[pk->nitems++] = id;
        if (depth_ok(v, t, id)) return ROSA_ERR_LIMIT;
    }
    v->sp -= k;
    return push(v, t);
}

static int dict_add(vm *v, int32_t d, int32_t key, int32_t val) {
    rosa__pk_obj *o = &v->pk->obj[d];
    if (grow((void **)&o->u.dict.kv, &o->u.dict.cap, 2 * ((int64_t)o->n + 1), sizeof *o->u.dict.kv))
        FAIL(ROSA_ERR_NOMEM, "out of memory");
    o->u.dict.kv[2 * o->n] = key;
    o->u.dict.kv[2 * o->n + 1] = val;
    o->n++;
    if (depth_ok(v, d, key) || depth_ok(v, d, val)) return ROSA_ERR_LIMIT;
    return 0;
}

/* ---- operand readers ---- */

static int need(vm *v, size_t k) {
    if (v->n - v->pc < k) FAIL(ROSA_ERR_FORMAT, "truncated (opcode 0x%02x needs %zu more bytes)", v->p[v->at], k);
    return 0;
}

static uint64_t le(const unsigned char *p, int k) {
    uint64_t x = 0;
    for (int i = k - 1; i >= 0; i--) x = x << 8 | p[i];
    return x;
}

static int read_uint(vm *v, int k, uint64_t *x) {
    if (need(v, (size_t)k)) return ROSA_ERR_FORMAT;
    *x = le(v->p + v->pc, k);
    v->pc += (size_t)k;
    return 0;
}

static int push_int(vm *v, int64_t x) {
    int32_t id = new_obj(v, ROSA__PK_INT);
    if (id >= 0) v->pk->obj[id].u.i = x;
    return push(v, id);
}

static int push_str(vm *v, size_t len) {
    if (need(v, len)) return ROSA_ERR_FORMAT;
    int32_t id = new_obj(v, ROSA__PK_STR);
    if (id >= 0) {
        v->pk->obj[id].u.str.s = (const char *)v->p + v->pc;
        v->pk->obj[id].u.str.len = len;
    }
    v->pc += len;
    return push(v, id);
}

/* GLOBAL / STACK_GLOBAL: only names in the caller's table exist. */
static int push_global(vm *v, const char *mod, size_t mlen, const char *name, size_t nlen) {
    for (int g = 0; g < v->nglobals; g++) {
        const rosa__pk_global *G = &v->globals[g];
        if (strlen(G->module) == mlen && memcmp(G->module, mod, mlen) == 0 && strlen(G->name) == nlen &&
            memcmp(G->name, name, nlen) == 0) {
            int32_t id = new_obj(v, ROSA__PK_GLOBAL);
            if (id >= 0) v->pk->obj[id].u.global = g;
            return push(v, id);
        }
    }
    char qm[128], qn[128];
    FAIL(ROSA_ERR_UNSUPPORTED, "global '%s.%s' is not allowed (only torch tensor rebuilding is understood; nothing is executed)",
         rosa__quote(qm, sizeof qm, mod, mlen), rosa__quote(qn, sizeof qn, name, nlen));
}

static int read_line(vm *v, const char **s, size_t *len) {
    const unsigned char *start = v->p + v->pc;
    size_t lim = v->n - v->pc;
    if (lim > ROSA_PK_MAX_GLOBAL_NAME + 1) lim = ROSA_PK_MAX_GLOBAL_NAME + 1;
    const unsigned char *nl = memchr(start, '\n', lim);
    if (!nl) FAIL(ROSA_ERR_FORMAT, "GLOBAL name unterminated or longer than %d bytes", ROSA_PK_MAX_GLOBAL_NAME);
    *s = (const char *)start;
    *len = (size_t)(nl - start);
    v->pc += *len + 1;
    return 0;
}

/* ---- memo ---- */

static int memo_put(vm *v, uint64_t idx) {
    if (avail(v) < 1) FAIL(ROSA_ERR_FORMAT, "memo store with an empty stack");
    /* CPython's pickler numbers memo entries 0, 1, 2, ... as it stores them: an index past the
     * next free one never occurs, and refusing it bounds the table by the opcodes seen */
    if (idx > v->nmemo_set)
        FAIL(ROSA_ERR_FORMAT, "memo index %llu out of range (next free index %zu)", (unsigned long long)idx, v->nmemo_set);
    if (idx >= v->capmemo) {
        size_t nc = v->capmemo ? v->capmemo : 64;
        while (nc <= idx) nc *= 2;
        int32_t *m = realloc(v->memo, nc * sizeof *m);
        if (!m) FAIL(ROSA_ERR_NOMEM, "out of memory");
        for (size_t i = v->capmemo; i < nc; i++) m[i] = -1;
        v->memo = m;
        v->capmemo = nc;
    }
    if (v->memo[idx] < 0) v->nmemo_set++;
    v->memo[idx] = v->stack[v->sp - 1];
    return 0;
}

static int memo_get(vm *v, uint64_t idx) {
    if (idx >= v->capmemo || v->memo[idx] < 0)
        FAIL(ROSA_ERR_FORMAT, "memo index %llu out of range (never stored)", (unsigned long long)idx);
    return push(v, v->memo[idx]);
}

/* ---- the interpreter ---- */

static int step(vm *v, int *done) {
    rosa__pickle *pk = v->pk;
    uint64_t x;
    int32_t a = 0, b = 0, c = 0, base = 0;
    int rc;
    unsigned char op = v->p[v->pc++];
    switch (op) {
    case 0x80: /* PROTO */
        if ((rc = read_uint(v, 1, &x))) return rc;
        if (x < 2 || x > 5) FAIL(ROSA_ERR_UNSUPPORTED, "pickle protocol %llu (2 to 5 are supported)", (unsigned long long)x);
        return 0;
    case 0x95: /* FRAME: a length hint; frames are not needed for a fully mapped buffer */
        if ((rc = read_uint(v, 8, &x))) return rc;
        if (x > v->n - v->pc) FAIL(ROSA_ERR_FORMAT, "frame of %llu bytes runs past the end", (unsigned long long)x);
        return 0;
    case '(': /* MARK */
        if (v->nmarks >= ROSA_PK_MAX_MARKS) FAIL(ROSA_ERR_LIMIT, "more than %d nested MARKs", ROSA_PK_MAX_MARKS);
        v->marks[v->nmarks++] = v->sp;
        return 0;
    case '.': /* STOP */
        if (v->nmarks || v->sp != 1) FAIL(ROSA_ERR_FORMAT, "STOP with %d stack entries and %d open MARKs (want 1 and 0)", v->sp, v->nmarks);
        pk->root = v->stack[0];
        *done = 1;
        return 0;
    case 'N':  /* NONE */
    case 0x89: /* NEWFALSE */
    case 0x88: /* NEWTRUE */
        c = op == 'N' ? 0 : op == 0x89 ? 1 : 2;
        if (v->scalar[c] < 0) {
            a = new_obj(v, c == 0 ? ROSA__PK_NONE : ROSA__PK_BOOL);
            if (a < 0) return push(v, a);
            pk->obj[a].u.i = c == 2;
            v->scalar[c] = a;
        }
        return push(v, v->scalar[c]);
    case 'K': /* BININT1 */
        if ((rc = read_uint(v, 1, &x))) return rc;
        return push_int(v, (int64_t)x);
    case 'M': /* BININT2 */
        if ((rc = read_uint(v, 2, &x))) return rc;
        return push_int(v, (int64_t)x);
    case 'J': /* BININT: signed 32-bit */
        if ((rc = read_uint(v, 4, &x))) return rc;
        return push_int(v, (int64_t)(int32_t)(uint32_t)x);
    case 0x8a: { /* LONG1: little-endian two's complement of 0..8 bytes */
        if ((rc = read_uint(v, 1, &x))) return rc;
        int k = (int)x;
        if (k > 8) FAIL(ROSA_ERR_UNSUPPORTED, "integer of %d bytes does not fit 64 bits", k);
        if ((rc = need(v, (size_t)k))) return rc;
        uint64_t u = le(v->p + v->pc, k);
        if (k > 0 && k < 8 && (v->p[v->pc + k - 1] & 0x80)) u |= ~0ull << (8 * k); /* sign-extend */
        v->pc += (size_t)k;
        return push_int(v, (int64_t)u);
    }
    case 'X': /* BINUNICODE */
        if ((rc = read_uint(v, 4, &x))) return rc;
        return push_str(v, (size_t)x);
    case 0x8c: /* SHORT_BINUNICODE */
        if ((rc = read_uint(v, 1, &x))) return rc;
        return push_str(v, (size_t)x);
    case 0x8d: /* BINUNICODE8 */
        if ((rc = read_uint(v, 8, &x))) return rc;
        if (x > v->n) FAIL(ROSA_ERR_FORMAT, "string of %llu bytes runs past the end", (unsigned long long)x);
        return push_str(v, (size_t)x);
    case '}': /* EMPTY_DICT */
        return push(v, new_obj(v, ROSA__PK_DICT));
    case ')': /* EMPTY_TUPLE */
        return make_tuple(v, 0);
    case 0x85: case 0x86: case 0x87: /* TUPLE1..3 */
        if (avail(v) < op - 0x84) FAIL(ROSA_ERR_FORMAT, "stack underflow");
        return make_tuple(v, op - 0x84);
    case 't': /* TUPLE */
        if ((rc = pop_mark(v, &base))) return rc;
        return make_tuple(v, v->sp - base);
    case 'c': { /* GLOBAL "module\nname\n" */
        const char *m = NULL, *nm = NULL;
        size_t ml = 0, nl = 0;
        if ((rc = read_line(v, &m, &ml)) || (rc = read_line(v, &nm, &nl))) return rc;
        return push_global(v, m, ml, nm, nl);
    }
    case 0x93: /* STACK_GLOBAL */
        if ((rc = pop(v, &b)) || (rc = pop(v, &a))) return rc;
        if (pk->obj[a].kind != ROSA__PK_STR || pk->obj[b].kind != ROSA__PK_STR)
            FAIL(ROSA_ERR_FORMAT, "STACK_GLOBAL needs two strings");
        return push_global(v, pk->obj[a].u.str.s, pk->obj[a].u.str.len, pk->obj[b].u.str.s, pk->obj[b].u.str.len);
    case 'q': /* BINPUT */
        if ((rc = read_uint(v, 1, &x))) return rc;
        return memo_put(v, x);
    case 'r': /* LONG_BINPUT */
        if ((rc = read_uint(v, 4, &x))) return rc;
        return memo_put(v, x);
    case 0x94: /* MEMOIZE */
        return memo_put(v, v->nmemo_set);
    case 'h': /* BINGET */
        if ((rc = read_uint(v, 1, &x))) return rc;
        return memo_get(v, x);
    case 'j': /* LONG_BINGET */
        if ((rc = read_uint(v, 4, &x))) return rc;
        return memo_get(v, x);
    case 'Q': /* BINPERSID */
        if ((rc = pop(v, &a))) return rc;
        b = new_obj(v, ROSA__PK_PERSID);
        if (b >= 0) {
            pk->obj[b].u.pid = a;
            if (depth_ok(v, b, a)) return ROSA_ERR_LIMIT;
        }
        return push(v, b);
    case 'R': { /* REDUCE: callable(*args), recorded, never run */
        if ((rc = pop(v, &b)) || (rc = pop(v, &a))) return rc;
        if (pk->obj[a].kind != ROSA__PK_GLOBAL || pk->obj[b].kind != ROSA__PK_TUPLE)
            FAIL(ROSA_ERR_FORMAT, "REDUCE needs a global and an argument tuple");
        int g = pk->obj[a].u.global;
        if (v->globals[g].kind == ROSA__PK_G_DICT_TYPE) {
            if (pk->obj[b].n != 0) FAIL(ROSA_ERR_UNSUPPORTED, "%s.%s called with arguments", v->globals[g].module, v->globals[g].name);
            return push(v, new_obj(v, ROSA__PK_DICT));
        }
        if (v->globals[g].kind != ROSA__PK_G_CALLABLE)
            FAIL(ROSA_ERR_UNSUPPORTED, "%s.%s is not callable here", v->globals[g].module, v->globals[g].name);
        c = new_obj(v, ROSA__PK_CALL);
        if (c >= 0) {
            pk->obj[c].u.call.global = g;
            pk->obj[c].u.call.args = b;
            if (depth_ok(v, c, b)) return ROSA_ERR_LIMIT;
        }
        return push(v, c);
    }
    case 's': /* SETITEM */
        if ((rc = pop(v, &b)) || (rc = pop(v, &a))) return rc;
        if (avail(v) < 1 || pk->obj[v->stack[v->sp - 1]].kind != ROSA__PK_DICT)
            FAIL(ROSA_ERR_FORMAT, "SETITEM target is not a dict");
        return dict_add(v, v->stack[v->sp - 1], a, b);
    case 'u': /* SETITEMS */
        if ((rc = pop_mark(v, &base))) return rc;
        if ((v->sp - base) % 2) FAIL(ROSA_ERR_FORMAT, "SETITEMS with an odd number of entries");
        if (base - 1 < (v->nmarks ? v->marks[v->nmarks - 1] : 0) || pk->obj[v->stack[base - 1]].kind != ROSA__PK_DICT)
            FAIL(ROSA_ERR_FORMAT, "SETITEMS target is not a dict");
        for (int32_t i = base; i < v->sp; i += 2)
            if ((rc = dict_add(v, v->stack[base - 1], v->stack[i], v->stack[i + 1]))) return rc;
        v->sp = base;
        return 0;
    case 'b': /* BUILD: only a dict's attribute state (OrderedDict._metadata), which is ignored */
        if ((rc = pop(v, &a))) return rc;
        if (avail(v) < 1 || pk->obj[v->stack[v->sp - 1]].kind != ROSA__PK_DICT)
            FAIL(ROSA_ERR_UNSUPPORTED, "BUILD of an object other than a dict");
        return 0;
    default:
        if (op >= 0x20 && op < 0x7f) FAIL(ROSA_ERR_UNSUPPORTED, "unsupported pickle opcode 0x%02x ('%c')", op, op);
        FAIL(ROSA_ERR_UNSUPPORTED, "unsupported pickle opcode 0x%02x", op);
    }
}

int rosa__pickle_run(rosa__pickle *pk, const unsigned char *p, size_t n,
                     const rosa__pk_global *globals, int nglobals, const char *what, char *err,
                     size_t errlen) {
    memset(pk, 0, sizeof *pk);
    pk->root = -1;
    vm v;
    memset(&v, 0, sizeof v);
    v.pk = pk;
    v.p = p;
    v.n = n;
    v.globals = globals;
    v.nglobals = nglobals;
    v.what = what;
    v.err = err;
    v.errlen = errlen;
    v.scalar[0] = v.scalar[1] = v.scalar[2] = -1;
    int rc = 0, done = 0;
    if (n > ROSA_PK_MAX_BYTES)
        rc = vm_fail(&v, ROSA_ERR_LIMIT, "pickle of %zu bytes exceeds the %u-byte limit", n, ROSA_PK_MAX_BYTES);
    else if (n < 2 || p[0] != 0x80)
        rc = vm_fail(&v, ROSA_ERR_FORMAT, "not a binary pickle (protocol 2 to 5 expected)");
    while (!rc && !done) {
        if (v.pc >= v.n) {
            v.at = v.pc;
            rc = vm_fail(&v, ROSA_ERR_FORMAT, "pickle ends without STOP");
            break;
        }
        v.at = v.pc;
        rc = step(&v, &done);
    }
    free(v.stack);
    free(v.memo);
    return rc;
}

void rosa__pickle_free(rosa__pickle *pk) {
    for (int32_t i = 0; i < pk->nobj; i++)
        if (pk->obj[i].kind == ROSA__PK_DICT) free(pk->obj[i].u.dict.kv);
    free(pk->obj);
    free(pk->items);
    memset(pk, 0, sizeof *pk);
    pk->root = -1;
}
