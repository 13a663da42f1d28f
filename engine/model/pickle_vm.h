/* pickle_vm.h: a restricted pickle interpreter that builds an inert object graph.
 *
 * Python's pickle is a program; running it runs arbitrary callables.  This VM never calls
 * anything: it accepts a whitelist of opcodes (what pickle protocols 2-5 emit for dicts of
 * tuples, ints, strings and persistent ids), resolves GLOBAL only against a table the caller
 * passes, and records REDUCE as a CALL node for the caller to interpret.  Stack, marks, memo and
 * nesting are bounded, every read is bounds-checked. */
#ifndef ROSA_PICKLE_VM_H
#define ROSA_PICKLE_VM_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    ROSA__PK_NONE,
    ROSA__PK_BOOL,
    ROSA__PK_INT,
    ROSA__PK_STR,
    ROSA__PK_TUPLE,
    ROSA__PK_DICT,   /* dict or collections.OrderedDict: insertion order kept */
    ROSA__PK_GLOBAL,
    ROSA__PK_CALL,   /* REDUCE of a callable global, not evaluated */
    ROSA__PK_PERSID, /* BINPERSID of an object */
} rosa__pk_kind;

typedef struct rosa__pk_obj {
    uint8_t kind;  /* rosa__pk_kind */
    uint8_t depth; /* containers nested below (0 for scalars) */
    int32_t n;     /* TUPLE: items; DICT: key/value pairs */
    union {
        int64_t i;                                /* BOOL, INT */
        struct { const char *s; size_t len; } str; /* STR: points into the pickle bytes */
        int32_t first;                            /* TUPLE: its items are items[first..first+n) */
        struct { int32_t *kv; int32_t cap; } dict; /* DICT: kv[2n] key, value ids (cap entries); owned */
        int global;                               /* GLOBAL: index into the caller's table */
        struct { int global; int32_t args; } call; /* CALL: callable, argument tuple */
        int32_t pid;                              /* PERSID: the persistent id object */
    } u;
} rosa__pk_obj;

/* How a whitelisted global may be used. */
typedef enum {
    ROSA__PK_G_VALUE,     /* only passed around as a value (a storage class) */
    ROSA__PK_G_CALLABLE,  /* REDUCE makes a CALL node */
    ROSA__PK_G_DICT_TYPE, /* REDUCE with () makes an empty DICT (collections.OrderedDict) */
} rosa__pk_gkind;

typedef struct rosa__pk_global {
    const char *module, *name;
    int kind; /* rosa__pk_gkind */
} rosa__pk_global;

typedef struct rosa__pickle {
    rosa__pk_obj *obj; /* [nobj]; ids are indices */
    int32_t nobj, capobj;
    int32_t *items;    /* tuple items */
    int32_t nitems, capitems;
    int32_t root;      /* the object STOP returned */
} rosa__pickle;

/* Bounds on untrusted input */
#define ROSA_PK_MAX_BYTES (64u << 20)  /* pickle size (~100 bytes per tensor in practice) */
#define ROSA_PK_MAX_OBJECTS (1 << 24)  /* objects built (~15 per tensor) */
#define ROSA_PK_MAX_STACK (1 << 22)    /* stack entries */
#define ROSA_PK_MAX_MARKS 32           /* open MARKs */
#define ROSA_PK_MAX_DEPTH 32           /* container nesting */
#define ROSA_PK_MAX_GLOBAL_NAME 256

/* Run the pickle p[0..n).  what names it in messages (e.g. "model.pt: archive/data.pkl").
 * Returns 0 with pk->root set, or < 0 with a message; call rosa__pickle_free either way. */
int rosa__pickle_run(rosa__pickle *pk, const unsigned char *p, size_t n,
                     const rosa__pk_global *globals, int nglobals, const char *what, char *err,
                     size_t errlen);
void rosa__pickle_free(rosa__pickle *pk);

/* Item i of tuple t (t must be a TUPLE with i < n). */
static inline const rosa__pk_obj *rosa__pk_item(const rosa__pickle *pk, const rosa__pk_obj *t, int i) {
    return &pk->obj[pk->items[t->u.first + i]];
}

#endif
