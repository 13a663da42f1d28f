/* sessions.h: kept ROSA sessions addressed by session_id.
 *
 * The loop thread reserves an entry for a request (creating it if new) and lists/deletes
 * entries; the engine thread owns the rosa_session inside, feeds it, releases the entry when the
 * request ends, and is the only thread that frees rosa_sessions (deleted and evicted entries
 * wait on a graveyard until the engine's next iteration).  One mutex guards the table. */
#ifndef SRV_SESSIONS_H
#define SRV_SESSIONS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "rosa.h"
#include "sbuf.h"

typedef struct srv_sess {
    char id[200];        /* "owner/session_id" with API-key owners (auth.c), else the id */
    rosa_session *rs;    /* engine thread only; NULL until first used */
    int32_t *toks;       /* tokens fed into rs (engine thread while busy) */
    int64_t n;
    int busy;            /* reserved by a request */
    uint64_t turn;       /* requests that reserved it so far (chat_prepare.c: stale or not) */
    int dead;            /* evicted or deleted: on the graveyard */
    int preparing;       /* engine thread is feeding it ahead of a request (chat_prepare.c):
                            not freed from the graveyard until it is done */
    double last_used;
    size_t bytes;        /* kv + rosa bytes when last released; on disk: its files' bytes */
    int where;           /* SRV_LOC_*: DISK: the state is in --session-dir (session_disk.c) */
    int probe;           /* new with --session-dir: a file there may hold it (restart, replica) */
    struct srv_save *save; /* a save to disk holding rs and toks, until the engine frees them */
    struct srv_save *load; /* a restore by the disk thread for the request that reserved it */
    struct srv_sess *next;
} srv_sess;

enum { SRV_LOC_MEM = 0, SRV_LOC_DISK = 1 };

typedef struct srv_sessions {
    pthread_mutex_t mu;
    srv_sess *head;      /* most recently used first */
    srv_sess *graveyard;
    long count;
    size_t bytes;        /* sum of bytes of idle entries */
    size_t budget;
    long max_count;      /* --max-sessions */
    double ttl;          /* seconds; 0: none */
    srv_metrics *metrics;
    /* --session-dir (session_disk.c): entries whose state is on disk, most recent first; they
     * count neither in count nor in bytes */
    struct srv_disk *disk; /* NULL: no disk tier (evicted sessions are dropped) */
    srv_sess *disk_head;
    long disk_count;
    size_t disk_bytes;
    void (*wake)(void *); /* the disk thread finished a restore: wake the engine (wake_arg) */
    void *wake_arg;
} srv_sessions;

void srv_sessions_init(srv_sessions *s, size_t budget, double ttl, long max_count,
                       srv_metrics *m);
/* Engine thread at exit: frees everything. */
void srv_sessions_destroy(srv_sessions *s);
/* Loop thread: reserve (create if absent; at max_count the least recently used idle entry is
 * evicted to make room).  Returns the entry, or NULL with *busy = 1 when in use by another
 * request, *busy = 0 when every entry is busy or out of memory. */
srv_sess *srv_sessions_acquire(srv_sessions *s, const char *id, int *busy, double now);
/* Engine thread: the request ended; the entry takes rs and toks[0..n) (the tokens fed into rs;
 * rs = NULL drops the state).  Evicts least-recently-used idle entries over the budget. */
void srv_sessions_release(srv_sessions *s, srv_sess *e, rosa_session *rs, int32_t *toks,
                          int64_t n, double now);
/* Loop thread: give back a reservation that never reached the engine (state untouched). */
void srv_sessions_unreserve(srv_sessions *s, srv_sess *e, double now);
/* Engine thread: evict least-recently-used idle entries until idle bytes <= target (room for
 * running sequences under the same budget).  Returns the number evicted. */
int srv_sessions_fit(srv_sessions *s, size_t target);
/* Engine thread, chat preparation (chat_prepare.c): the idle entry `id` if it is still the one
 * reserved by turn `turn` (no request has reserved it since), marked preparing; else NULL with
 * *taken = 1 when a request came first (busy, or a later turn), 0 when it is gone. */
srv_sess *srv_sessions_prep_begin(srv_sessions *s, const char *id, uint64_t turn, int *taken);
/* Engine thread: the preparation step is over; the entry holds rs (NULL: state dropped) and
 * toks[0..n) again.  Updates bytes and evicts over the budget as srv_sessions_release. */
void srv_sessions_prep_end(srv_sessions *s, srv_sess *e, rosa_session *rs, int32_t *toks,
                           int64_t n);
/* Loop thread: 0 deleted, -1 unknown, -2 busy. */
int srv_sessions_delete(srv_sessions *s, const char *id);
/* Engine thread: free the graveyard and TTL-expired idle entries. */
void srv_sessions_collect(srv_sessions *s, double now);
/* Loop thread: {"object":"list","data":[...]} of the entries of one owner (ids "owner/..."; ""
 * for ids without an owner), shown without the owner prefix, with their location. */
void srv_sessions_list(srv_sessions *s, sbuf *out, double now, const char *owner);
/* Engine thread at exit (graceful shutdown): with --session-dir, save every idle kept session
 * there and wait until written.  Returns the number saved. */
int srv_sessions_save_all(srv_sessions *s);
/* Engine thread, every iteration: free the state of sessions written to disk since (until then
 * a request may take it back without reading the file). */
void srv_sessions_free_saved(srv_sessions *s);
/* mutex held (session_disk.c): gauges after a change of the lists */
void srv_sessions_gauges_locked(srv_sessions *s);

#endif
