/* sessions.c: the session_id table, LRU order, byte budget, TTL and the graveyard that hands
 * freed rosa_sessions back to the engine thread.  With --session-dir, evicted sessions go to
 * the disk list instead of the graveyard (session_disk.c). */
#include "sessions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session_disk.h"

static void set_gauges(srv_sessions *s) {
    atomic_store_explicit(&s->metrics->sessions, s->count, memory_order_relaxed);
    atomic_store_explicit(&s->metrics->session_bytes, (long long)s->bytes, memory_order_relaxed);
    atomic_store_explicit(&s->metrics->disk_sessions, s->disk_count, memory_order_relaxed);
    atomic_store_explicit(&s->metrics->disk_bytes, (long long)s->disk_bytes,
                          memory_order_relaxed);
}

void srv_sessions_gauges_locked(srv_sessions *s) { set_gauges(s); }

void srv_sessions_init(srv_sessions *s, size_t budget, double ttl, long max_count,
                       srv_metrics *m) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->budget = budget;
    s->max_count = max_count > 0 ? max_count : 1;
    s->ttl = ttl;
    s->metrics = m;
}

static void free_entry(srv_sess *e) {
    if (e->rs) rosa_session_free(e->rs);
    free(e->toks);
    free(e);
}

void srv_sessions_destroy(srv_sessions *s) {
    for (srv_sess *e = s->head, *n; e; e = n) {
        n = e->next;
        free_entry(e);
    }
    for (srv_sess *e = s->graveyard, *n; e; e = n) {
        n = e->next;
        free_entry(e);
    }
    for (srv_sess *e = s->disk_head, *n; e; e = n) {
        n = e->next;
        free_entry(e);
    }
    s->head = s->graveyard = s->disk_head = NULL;
    pthread_mutex_destroy(&s->mu);
}

/* unlink e from the list (mutex held) */
static void unlink_entry(srv_sessions *s, srv_sess *e) {
    for (srv_sess **pp = &s->head; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    s->count--;
    if (!e->busy) s->bytes -= e->bytes;
}

/* Move the least recently used idle entry to the graveyard (mutex held).  0 if none is idle. */
static int evict_lru(srv_sessions *s) {
    srv_sess *victim = NULL;
    for (srv_sess *e = s->head; e; e = e->next)
        /* last idle one = least recently used; one the engine is feeding ahead of its next turn
         * (chat_prepare.c, one slice at a time) stays until that slice ends */
        if (!e->busy && !e->preparing) victim = e;
    if (!victim) return 0;
    unlink_entry(s, victim);
    if (!srv_disk_spill_locked(s, victim)) { /* --session-dir takes it, or it goes */
        victim->dead = 1;
        victim->next = s->graveyard;
        s->graveyard = victim;
    }
    atomic_fetch_add_explicit(&s->metrics->evictions, 1, memory_order_relaxed);
    return 1;
}

/* (mutex held) the entry of id in the memory list, else taken off the disk list (not yet on
 * the memory list: the caller links it), else NULL */
static srv_sess *find(srv_sessions *s, const char *id, int *on_disk) {
    *on_disk = 0;
    for (srv_sess *e = s->head; e; e = e->next)
        if (!strcmp(e->id, id)) return e;
    for (srv_sess *e = s->disk_head; e; e = e->next)
        if (!strcmp(e->id, id)) {
            srv_disk_unlink_locked(s, e);
            *on_disk = 1;
            return e;
        }
    return NULL;
}

srv_sess *srv_sessions_acquire(srv_sessions *s, const char *id, int *busy, double now) {
    *busy = 0;
    pthread_mutex_lock(&s->mu);
    int on_disk;
    srv_sess *e = find(s, id, &on_disk);
    if (e && on_disk) { /* brought back by the engine (srv_disk_bring_back) */
        if (s->count < s->max_count || evict_lru(s)) {
            s->count++; /* (e->bytes, its files' until then, count nowhere while it is busy) */
        } else {
            srv_disk_push_locked(s, e);
            e = NULL;
        }
    } else if (e && e->busy) {
        *busy = 1;
        e = NULL;
    } else if (e) {
        unlink_entry(s, e);
        s->count++;
    } else if ((s->count < s->max_count || evict_lru(s)) && (e = calloc(1, sizeof *e))) {
        snprintf(e->id, sizeof e->id, "%s", id);
        e->probe = s->disk != NULL;
        s->count++;
    }
    if (e) {
        e->busy = 1;
        e->turn++;
        e->last_used = now;
        e->next = s->head;
        s->head = e;
        set_gauges(s);
    }
    pthread_mutex_unlock(&s->mu);
    return e;
}

static int evict_until(srv_sessions *s, size_t target) {
    int n = 0;
    while (s->bytes > target && evict_lru(s)) n++;
    return n;
}

static void evict_over_budget(srv_sessions *s) { evict_until(s, s->budget); }

int srv_sessions_fit(srv_sessions *s, size_t target) {
    pthread_mutex_lock(&s->mu);
    int n = evict_until(s, target);
    if (n) set_gauges(s);
    pthread_mutex_unlock(&s->mu);
    return n;
}
/* The bytes a kept session counts for (its caches, automata and tokens); without a session
 * (rebuild failed) the tokens are dropped too and it counts for nothing. */
static size_t kept_bytes(rosa_session *rs, int32_t **toks, int64_t *n) {
    if (!rs) {
        free(*toks);
        *toks = NULL;
        *n = 0;
        return 0;
    }
    rosa_session_mem m;
    rosa_session_memory(rs, &m);
    return m.kv_bytes + m.rosa_bytes + (size_t)*n * sizeof(int32_t);
}

void srv_sessions_release(srv_sessions *s, srv_sess *e, rosa_session *rs, int32_t *toks,
                          int64_t n, double now) {
    if (e->load) { /* ended before its restore was used */
        pthread_mutex_lock(&s->mu);
        srv_disk_abandon_locked(s, e);
        pthread_mutex_unlock(&s->mu);
    }
    if (!rs && e->where == SRV_LOC_DISK && s->disk) {
        /* never brought back (the request ended before the engine ran it): still on disk */
        pthread_mutex_lock(&s->mu);
        unlink_entry(s, e);
        e->last_used = now;
        srv_disk_push_locked(s, e);
        set_gauges(s);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    size_t bytes = kept_bytes(rs, &toks, &n);
    if (e->toks != toks) free(e->toks);
    if (e->rs && e->rs != rs) rosa_session_free(e->rs);
    pthread_mutex_lock(&s->mu);
    e->rs = rs;
    e->toks = toks;
    e->n = n;
    e->busy = 0;
    e->bytes = bytes;
    e->last_used = now;
    s->bytes += bytes;
    evict_over_budget(s);
    set_gauges(s);
    pthread_mutex_unlock(&s->mu);
    srv_sessions_collect(s, now);
}

srv_sess *srv_sessions_prep_begin(srv_sessions *s, const char *id, uint64_t turn, int *taken) {
    *taken = 0;
    pthread_mutex_lock(&s->mu);
    srv_sess *e = s->head;
    while (e && strcmp(e->id, id)) e = e->next;
    if (e && (e->busy || e->turn != turn)) {
        *taken = 1;
        e = NULL;
    }
    if (e) e->preparing = 1;
    pthread_mutex_unlock(&s->mu);
    return e;
}

void srv_sessions_prep_end(srv_sessions *s, srv_sess *e, rosa_session *rs, int32_t *toks,
                           int64_t n) {
    size_t bytes = kept_bytes(rs, &toks, &n);
    pthread_mutex_lock(&s->mu);
    e->rs = rs;
    e->toks = toks;
    e->n = n;
    e->preparing = 0;
    /* idle and listed: its bytes count (busy ones are counted again when released; dead ones
     * no longer) */
    if (!e->busy && !e->dead) s->bytes = s->bytes - e->bytes + bytes;
    e->bytes = bytes;
    evict_over_budget(s);
    set_gauges(s);
    pthread_mutex_unlock(&s->mu);
}

void srv_sessions_unreserve(srv_sessions *s, srv_sess *e, double now) {
    pthread_mutex_lock(&s->mu);
    e->busy = 0;
    e->last_used = now;
    if (!e->dead) s->bytes += e->bytes;
    evict_over_budget(s);
    set_gauges(s);
    pthread_mutex_unlock(&s->mu);
}

int srv_sessions_delete(srv_sessions *s, const char *id) {
    pthread_mutex_lock(&s->mu);
    int on_disk;
    srv_sess *e = find(s, id, &on_disk);
    int rc = -1;
    if (e && e->busy) {
        rc = -2;
    } else if (e) {
        if (!on_disk) unlink_entry(s, e);
        srv_disk_forget_locked(s, e); /* its files too */
        e->dead = 1;
        e->next = s->graveyard;
        s->graveyard = e;
        set_gauges(s);
        rc = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void srv_sessions_collect(srv_sessions *s, double now) {
    pthread_mutex_lock(&s->mu);
    if (s->ttl > 0) {
        for (srv_sess **pp = &s->head; *pp;) {
            srv_sess *e = *pp;
            if (!e->busy && now - e->last_used > s->ttl) {
                *pp = e->next;
                s->count--;
                s->bytes -= e->bytes;
                if (e->where == SRV_LOC_DISK && s->disk) srv_disk_push_locked(s, e);
                else {
                    e->dead = 1;
                    e->next = s->graveyard;
                    s->graveyard = e;
                }
                atomic_fetch_add_explicit(&s->metrics->evictions, 1, memory_order_relaxed);
            } else {
                pp = &e->next;
            }
        }
    }
    /* entries the engine is preparing stay until it is done with them (prep_end) */
    srv_sess *dead = NULL;
    for (srv_sess **pp = &s->graveyard; *pp;) {
        srv_sess *e = *pp;
        if (e->preparing) {
            pp = &e->next;
            continue;
        }
        *pp = e->next;
        e->next = dead;
        dead = e;
    }
    struct srv_save *saved = srv_disk_take_done_locked(s);
    set_gauges(s);
    pthread_mutex_unlock(&s->mu);
    for (srv_sess *e = dead, *n; e; e = n) {
        n = e->next;
        free_entry(e);
    }
    srv_disk_free_done(saved);
}

void srv_sessions_free_saved(srv_sessions *s) {
    if (!s->disk) return;
    pthread_mutex_lock(&s->mu);
    struct srv_save *saved = srv_disk_take_done_locked(s);
    pthread_mutex_unlock(&s->mu);
    srv_disk_free_done(saved);
}

int srv_sessions_save_all(srv_sessions *s) {
    if (!s->disk) return 0;
    pthread_mutex_lock(&s->mu);
    long before = s->disk_count;
    while (evict_lru(s)) {
    }
    long n = s->disk_count - before;
    set_gauges(s);
    pthread_mutex_unlock(&s->mu);
    srv_disk_drain(s);
    srv_sessions_collect(s, 0);
    return (int)n;
}

static void list_one(sbuf *o, const srv_sess *e, size_t pl, double now, int *first) {
    const char *shown = pl ? e->id + pl + 1 : e->id;
    if (!*first) sb_puts(o, ",");
    *first = 0;
    sb_puts(o, "{\"id\":");
    sb_json_str(o, shown, strlen(shown));
    sb_printf(o, ",\"object\":\"session\",\"tokens\":%lld,\"bytes\":%zu,\"busy\":%s,"
                 "\"idle_seconds\":%.3f,\"location\":\"%s\"}",
              (long long)e->n, e->bytes, e->busy ? "true" : "false",
              e->busy ? 0.0 : now - e->last_used, e->where == SRV_LOC_DISK ? "disk" : "memory");
}

static int owned(const srv_sess *e, const char *owner, size_t pl) {
    const char *slash = strchr(e->id, '/');
    return pl ? slash && (size_t)(slash - e->id) == pl && !memcmp(e->id, owner, pl) : !slash;
}

void srv_sessions_list(srv_sessions *s, sbuf *o, double now, const char *owner) {
    sb_puts(o, "{\"object\":\"list\",\"data\":[");
    size_t pl = strlen(owner);
    pthread_mutex_lock(&s->mu);
    int first = 1;
    for (srv_sess *e = s->head; e; e = e->next)
        if (owned(e, owner, pl)) list_one(o, e, pl, now, &first);
    for (srv_sess *e = s->disk_head; e; e = e->next)
        if (owned(e, owner, pl)) list_one(o, e, pl, now, &first);
    pthread_mutex_unlock(&s->mu);
    sb_puts(o, "]}");
}
