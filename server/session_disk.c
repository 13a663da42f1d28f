/* session_disk.c: the --session-dir tier: the disk thread and its job queue (saves, restores
 * and file removals; first in first out per session, so that a removal queued after a save
 * removes what it wrote and a restore never overtakes a removal), the start-up scan and the
 * --session-dir-bytes LRU over files.  The lists live in srv_sessions under its mutex; see
 * session_disk.h for who does what. */
#include "session_disk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "server.h"
#include "session_files.h"

enum { JOB_SAVE, JOB_REMOVE, JOB_RESTORE };
enum { JS_QUEUED, JS_RUNNING, JS_DONE };

typedef struct srv_save {
    int kind, state;
    char key[200];
    rosa_session *rs;  /* JOB_SAVE: the state being written; JOB_RESTORE: the state read;
                          the engine takes or frees it */
    int32_t *toks;
    int64_t n;
    srv_sess *entry;   /* the entry waiting for it; NULL once it no longer does */
    int rc;
    int known;         /* JOB_RESTORE: the entry was listed on disk (not a probe) */
    double secs;       /* JOB_RESTORE: time it took */
    struct srv_save *next;
} srv_save;

typedef struct srv_disk {
    srv_sessions *s;
    const srv_server *srv;
    char dir[1024];
    size_t max_bytes;
    pthread_t thread;
    pthread_cond_t cv;      /* todo or stop changed (with s->mu) */
    pthread_cond_t done_cv; /* a job finished */
    srv_save *todo, *todo_tail;
    srv_save *done;         /* finished saves, their state for the engine to free */
    int running, stop;
    double test_delay;      /* $ROSA_TEST_DISK_DELAY_MS: tests hold each save and restore
                               back this long */
} srv_disk;

static srv_metrics *M(srv_disk *d) { return d->s->metrics; }

/* ---------------------------------------------------------------- lists (mutex held) */

void srv_disk_push_locked(srv_sessions *s, srv_sess *e) {
    e->where = SRV_LOC_DISK;
    e->busy = 0;
    e->next = s->disk_head;
    s->disk_head = e;
    s->disk_count++;
    s->disk_bytes += e->bytes;
}

void srv_disk_unlink_locked(srv_sessions *s, srv_sess *e) {
    for (srv_sess **pp = &s->disk_head; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            s->disk_count--;
            s->disk_bytes -= e->bytes;
            return;
        }
}

static void enqueue(srv_disk *d, srv_save *j) {
    j->state = JS_QUEUED;
    j->next = NULL;
    if (d->todo_tail) d->todo_tail->next = j;
    else d->todo = j;
    d->todo_tail = j;
    pthread_cond_signal(&d->cv);
}

static void dequeue(srv_disk *d, srv_save *j) {
    srv_save *prev = NULL;
    for (srv_save *q = d->todo; q; prev = q, q = q->next)
        if (q == j) {
            if (prev) prev->next = q->next;
            else d->todo = q->next;
            if (d->todo_tail == q) d->todo_tail = prev;
            return;
        }
}

static void queue_remove(srv_disk *d, const char *key) {
    srv_save *j = calloc(1, sizeof *j);
    if (!j) return; /* the files stay: a later save overwrites them, a restore checks them */
    j->kind = JOB_REMOVE;
    snprintf(j->key, sizeof j->key, "%s", key);
    enqueue(d, j);
}

int srv_disk_spill_locked(srv_sessions *s, srv_sess *e) {
    srv_disk *d = s->disk;
    if (!d) return 0;
    if (!e->rs) { /* nothing in memory: only a state still on disk (never brought back) */
        if (e->where != SRV_LOC_DISK) return 0;
        srv_disk_push_locked(s, e);
        return 1;
    }
    srv_save *j = calloc(1, sizeof *j);
    if (!j) return 0;
    j->kind = JOB_SAVE;
    snprintf(j->key, sizeof j->key, "%s", e->id);
    j->rs = e->rs;
    j->toks = e->toks;
    j->n = e->n;
    j->entry = e;
    e->rs = NULL;
    e->toks = NULL;
    e->save = j;
    e->probe = 0;
    e->bytes = 0; /* its files' once written (save_done_locked) */
    srv_disk_push_locked(s, e);
    enqueue(d, j);
    return 1;
}

static void to_done(srv_disk *d, srv_save *j) {
    j->state = JS_DONE;
    j->next = d->done;
    d->done = j;
}

void srv_disk_forget_locked(srv_sessions *s, srv_sess *e) {
    srv_disk *d = s->disk;
    if (!d) return;
    srv_save *j = e->save;
    if (j) {
        if (j->state == JS_QUEUED) { /* not started: never written */
            dequeue(d, j);
            to_done(d, j);
        }
        j->entry = NULL;
        e->save = NULL;
    }
    queue_remove(d, e->id); /* after a running save: removes what it writes */
}

srv_save *srv_disk_take_done_locked(srv_sessions *s) {
    srv_disk *d = s->disk;
    if (!d) return NULL;
    srv_save *all = d->done;
    d->done = NULL;
    for (srv_save *j = all; j; j = j->next)
        if (j->entry && j->entry->save == j) {
            j->entry->save = NULL;
            j->entry = NULL;
        }
    return all;
}

void srv_disk_free_done(srv_save *j) {
    while (j) {
        srv_save *n = j->next;
        if (j->rs) rosa_session_free(j->rs);
        free(j->toks);
        free(j);
        j = n;
    }
}

/* Over --session-dir-bytes or SRV_DISK_MAX_FILES: the least recently used sessions on disk
 * (not being written) go. */
static void trim_locked(srv_disk *d) {
    srv_sessions *s = d->s;
    while ((d->max_bytes && s->disk_bytes > d->max_bytes) || s->disk_count > SRV_DISK_MAX_FILES) {
        srv_sess *victim = NULL;
        for (srv_sess *e = s->disk_head; e; e = e->next)
            if (!e->save) victim = e;
        if (!victim) break;
        srv_disk_unlink_locked(s, victim);
        queue_remove(d, victim->id);
        atomic_fetch_add_explicit(&M(d)->disk_dropped, 1, memory_order_relaxed);
        free(victim); /* on disk: no rs, no toks */
    }
    srv_sessions_gauges_locked(s);
}

/* ---------------------------------------------------------------- the disk thread */

static void save_done_locked(srv_disk *d, srv_save *j, int rc, size_t bytes, double secs) {
    srv_sessions *s = d->s;
    srv_sess *e = j->entry;
    j->rc = rc;
    if (!rc) {
        atomic_fetch_add_explicit(&M(d)->disk_saves, 1, memory_order_relaxed);
        srv_hist_observe(&M(d)->disk_save_time, secs);
        if (e && e->where == SRV_LOC_DISK && !e->busy) {
            s->disk_bytes = s->disk_bytes - e->bytes + bytes;
            e->bytes = bytes;
        }
    } else {
        atomic_fetch_add_explicit(&M(d)->disk_save_failures, 1, memory_order_relaxed);
        srv_log(d->srv, SRV_LOG_WARN, "session '%s': cannot save it to --session-dir %s: %s; "
                "dropped (the next request rebuilds it from its prompt)", j->key, d->dir,
                rosa_strerror(rc));
        if (e && !e->busy) { /* (a reserved one takes its state back from j: bring_back) */
            srv_disk_unlink_locked(s, e);
            e->save = NULL;
            j->entry = NULL;
            free(e);
        }
    }
    to_done(d, j);
}

static void *disk_main(void *arg) {
    srv_disk *d = arg;
    srv_sessions *s = d->s;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!d->todo && !d->stop) pthread_cond_wait(&d->cv, &s->mu);
        srv_save *j = d->todo;
        if (!j) break;
        d->todo = j->next;
        j->next = NULL;
        if (!d->todo) d->todo_tail = NULL;
        j->state = JS_RUNNING;
        d->running = 1;
        pthread_mutex_unlock(&s->mu);
        double t0 = srv_now();
        size_t bytes = 0;
        int rc = 0;
        if (j->kind != JOB_REMOVE && d->test_delay > 0) {
            time_t sec = (time_t)d->test_delay;
            struct timespec ts = {sec, (long)((d->test_delay - (double)sec) * 1e9)};
            nanosleep(&ts, NULL);
        }
        if (j->kind == JOB_SAVE) rc = srv_sfile_save(d->dir, j->key, j->rs, j->toks, j->n, &bytes);
        else if (j->kind == JOB_RESTORE)
            rc = srv_sfile_restore(d->dir, j->key, d->srv->model, d->srv->info->vocab, &j->rs,
                                   &j->toks, &j->n);
        else srv_sfile_remove(d->dir, j->key);
        double secs = srv_now() - t0;
        pthread_mutex_lock(&s->mu);
        d->running = 0;
        if (j->kind == JOB_SAVE) {
            if (j->entry && j->entry->busy && s->wake) s->wake(s->wake_arg); /* a request waits */
            save_done_locked(d, j, rc, bytes, secs);
        } else if (j->kind == JOB_RESTORE) {
            j->rc = rc;
            j->secs = secs;
            if (j->entry) j->state = JS_DONE; /* the engine applies it (srv_disk_restore_wait) */
            else to_done(d, j);               /* abandoned: the engine frees what was read */
            if (s->wake) s->wake(s->wake_arg);
        } else {
            free(j);
        }
        trim_locked(d);
        pthread_cond_broadcast(&d->done_cv);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

void srv_disk_drain(srv_sessions *s) {
    srv_disk *d = s->disk;
    if (!d) return;
    pthread_mutex_lock(&s->mu);
    while (d->todo || d->running) pthread_cond_wait(&d->done_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

/* ---------------------------------------------------------------- restore */

/* mutex held: what a restore of e gave (rc, and rs/toks/n when 0) becomes e's state, or, when
 * it failed, e is left empty (rebuilt from the prompt); metrics, files and the log follow. */
static void apply_restore_locked(srv_disk *d, srv_sess *e, int rc, rosa_session *rs,
                                 int32_t *toks, int64_t n, double secs, int known) {
    srv_sessions *s = d->s;
    e->where = SRV_LOC_MEM;
    e->probe = 0;
    if (rc == 0) {
        e->rs = rs;
        e->toks = toks;
        e->n = n;
        atomic_fetch_add_explicit(&s->metrics->disk_restores, 1, memory_order_relaxed);
        srv_hist_observe(&s->metrics->disk_restore_time, secs);
        queue_remove(d, e->id); /* the session lives in memory again */
        srv_log(d->srv, SRV_LOG_DEBUG, "session '%s': restored %lld tokens from disk in %.3f s",
                e->id, (long long)n, secs);
        return;
    }
    e->n = 0;
    if (rc == 1 && !known) return; /* nothing there: a new session */
    atomic_fetch_add_explicit(&s->metrics->disk_restore_failures, 1, memory_order_relaxed);
    /* a file of another model or run options, or of a newer server, may be another replica's:
     * it stays (this replica's next save of the session replaces it); a broken one goes */
    if (rc != ROSA_ERR_MISMATCH && rc != ROSA_ERR_UNSUPPORTED && rc != ROSA_ERR_NOMEM && rc != 1)
        queue_remove(d, e->id);
    srv_log(d->srv, SRV_LOG_WARN, "session '%s': cannot restore it from --session-dir: %s%s; "
            "rebuilding it from the prompt", e->id,
            rc == 1 ? "its files are gone or belong to another session" : rosa_strerror(rc),
            rc == ROSA_ERR_MISMATCH      ? " (or other run options): file kept"
            : rc == ROSA_ERR_UNSUPPORTED ? " (a newer format?): file kept"
            : rc == ROSA_ERR_FORMAT      ? " (truncated, corrupt, or a sidecar of another save): "
                                           "files removed"
                                         : "");
}

/* mutex held: after the last queued job of the same key (a removal or save of it must come
 * first), else at the head (before other sessions' saves) */
static void enqueue_restore(srv_disk *d, srv_save *j) {
    srv_save *after = NULL;
    for (srv_save *q = d->todo; q; q = q->next)
        if (!strcmp(q->key, j->key)) after = q;
    j->state = JS_QUEUED;
    if (after) {
        j->next = after->next;
        after->next = j;
        if (d->todo_tail == after) d->todo_tail = j;
    } else {
        j->next = d->todo;
        d->todo = j;
        if (!d->todo_tail) d->todo_tail = j;
    }
    pthread_cond_signal(&d->cv);
}

static int side_exists(srv_disk *d, const char *key) {
    char name[17], path[1200];
    struct stat st;
    srv_sfile_name(key, name);
    return srv_sfile_path(path, sizeof path, d->dir, name, ".side") == 0 && stat(path, &st) == 0;
}

int srv_disk_restore_wait(srv_sessions *s, srv_sess *e) {
    srv_disk *d = s->disk;
    if (!d) return 0;
    pthread_mutex_lock(&s->mu);
    srv_save *j = e->load;
    if (j) {
        if (j->state != JS_DONE) {
            pthread_mutex_unlock(&s->mu);
            return 1;
        }
        e->load = NULL;
        apply_restore_locked(d, e, j->rc, j->rs, j->toks, j->n, j->secs, j->known);
        if (j->rc == 0) j->rs = NULL, j->toks = NULL;
        pthread_mutex_unlock(&s->mu);
        j->next = NULL; /* (on no list now) */
        srv_disk_free_done(j);
        return 0;
    }
    /* a pending save is taken back by srv_disk_bring_back, once no longer being written (the
     * disk thread wakes the engine then); nothing on disk: nothing to do */
    if (e->save || !(e->where == SRV_LOC_DISK || e->probe)) {
        int writing = e->save && e->save->state == JS_RUNNING;
        pthread_mutex_unlock(&s->mu);
        return writing;
    }
    int known = e->where == SRV_LOC_DISK;
    e->probe = 0;
    pthread_mutex_unlock(&s->mu);
    /* a new session: one stat tells whether there is anything to read (no queue wait for the
     * usual case, a session nobody saved) */
    if (!known && !side_exists(d, e->id)) return 0;
    j = calloc(1, sizeof *j);
    if (!j) return 0; /* bring_back reads it on this thread */
    j->kind = JOB_RESTORE;
    snprintf(j->key, sizeof j->key, "%s", e->id);
    j->entry = e;
    j->known = known;
    pthread_mutex_lock(&s->mu);
    e->load = j;
    enqueue_restore(d, j);
    pthread_mutex_unlock(&s->mu);
    return 1;
}

void srv_disk_abandon_locked(srv_sessions *s, srv_sess *e) {
    srv_disk *d = s->disk;
    srv_save *j = e->load;
    if (!d || !j) return;
    e->load = NULL;
    j->entry = NULL;
    if (j->state == JS_QUEUED) {
        dequeue(d, j);
        free(j);
    } else if (j->state == JS_DONE) {
        to_done(d, j);
    } /* running: the disk thread hands it to the done list when finished */
    if (e->where != SRV_LOC_DISK) e->probe = 1; /* the files are still there */
}

void srv_disk_bring_back(srv_sessions *s, srv_sess *e, rosa_model *m, int vocab) {
    srv_disk *d = s->disk;
    if (!d) return;
    pthread_mutex_lock(&s->mu);
    srv_save *j = e->save;
    if (j) {
        /* evicted a moment ago: its state is still in memory, take it back (waiting for a
         * write in progress, which reads it) */
        while (j->state == JS_RUNNING) pthread_cond_wait(&d->done_cv, &s->mu);
        int queued = j->state == JS_QUEUED, written = j->state == JS_DONE && j->rc == 0;
        if (queued) dequeue(d, j);
        e->rs = j->rs;
        e->toks = j->toks;
        e->n = j->n;
        j->rs = NULL;
        j->toks = NULL;
        j->entry = NULL;
        e->save = NULL;
        e->where = SRV_LOC_MEM;
        e->probe = 0;
        if (queued) free(j);
        if (written) queue_remove(d, e->id); /* the session lives in memory again */
        pthread_mutex_unlock(&s->mu);
        srv_log(d->srv, SRV_LOG_DEBUG, "session '%s': taken back from its %s save", e->id,
                queued ? "queued" : "finished");
        return;
    }
    int known = e->where == SRV_LOC_DISK, try = (known || e->probe) && !e->load;
    e->probe = 0;
    pthread_mutex_unlock(&s->mu);
    if (!try) return;
    /* not read by the disk thread (srv_disk_restore_wait was not asked, or out of memory):
     * read here */
    double t0 = srv_now();
    rosa_session *rs = NULL;
    int32_t *toks = NULL;
    int64_t n = 0;
    int rc = srv_sfile_restore(d->dir, e->id, m, vocab, &rs, &toks, &n);
    pthread_mutex_lock(&s->mu);
    apply_restore_locked(d, e, rc, rs, toks, n, srv_now() - t0, known);
    pthread_mutex_unlock(&s->mu);
}

/* ---------------------------------------------------------------- start-up */

static int newer_first(const void *a, const void *b) {
    double x = (*(srv_sess *const *)a)->last_used, y = (*(srv_sess *const *)b)->last_used;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int is_hex16(const char *p) {
    for (int i = 0; i < 16; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) return 0;
    return 1;
}

/* Learn the sessions in d->dir (before any thread runs); remove old leftovers of interrupted
 * saves.  Returns the number found. */
static long scan(srv_disk *d) {
    srv_sessions *s = d->s;
    DIR *dir = opendir(d->dir);
    if (!dir) return 0;
    srv_sess **found = NULL;
    long n = 0, cap = 0, skipped = 0, extra = 0;
    double now = srv_now();
    time_t wall = time(NULL);
    struct dirent *de;
    while ((de = readdir(dir))) {
        const char *nm = de->d_name;
        size_t len = strlen(nm);
        char path[1300];
        struct stat st;
        if (strstr(nm, ".part")) { /* an interrupted save (this or another replica's) */
            if (srv_sfile_path(path, sizeof path, d->dir, nm, "") == 0 && stat(path, &st) == 0 &&
                wall - st.st_mtime > 600)
                unlink(path);
            continue;
        }
        if (len != 21 || strcmp(nm + 16, ".side") || !is_hex16(nm)) continue;
        if (n >= SRV_DISK_MAX_FILES) {
            extra++;
            continue;
        }
        srv_side_info si;
        char eng[1300], want[17];
        int rc = srv_sfile_path(path, sizeof path, d->dir, nm, "") ? ROSA_ERR_INVALID
                                                                   : srv_sfile_peek(path, &si);
        if (rc == 0) {
            srv_sfile_name(si.id, want);
            snprintf(eng, sizeof eng, "%s/%.16s.rosa", d->dir, nm);
            if (memcmp(want, nm, 16)) rc = ROSA_ERR_FORMAT;
            else if (stat(eng, &st) || (uint64_t)st.st_size != si.engine_bytes)
                rc = ROSA_ERR_FORMAT;
        }
        if (rc) {
            skipped++;
            srv_log(d->srv, SRV_LOG_WARN, "--session-dir: skipping %s: %s", nm,
                    rc == 1 ? "gone" : rosa_strerror(rc));
            continue;
        }
        if (n == cap) {
            long nc = cap ? 2 * cap : 64;
            srv_sess **f = realloc(found, sizeof *f * (size_t)nc);
            if (!f) break;
            found = f;
            cap = nc;
        }
        srv_sess *e = calloc(1, sizeof *e);
        if (!e) break;
        snprintf(e->id, sizeof e->id, "%s", si.id);
        e->n = si.n;
        e->bytes = (size_t)(si.engine_bytes + si.side_bytes);
        e->last_used = now - (double)(wall - st.st_mtime);
        found[n++] = e;
    }
    closedir(dir);
    if (extra)
        srv_log(d->srv, SRV_LOG_WARN, "--session-dir: more than %d sessions; %ld left unread",
                SRV_DISK_MAX_FILES, extra);
    if (n) qsort(found, (size_t)n, sizeof *found, newer_first);
    for (long i = n - 1; i >= 0; i--) srv_disk_push_locked(s, found[i]);
    free(found);
    if (n || skipped)
        srv_log(d->srv, SRV_LOG_INFO, "--session-dir %s: %ld sessions (%zu bytes), %ld skipped",
                d->dir, n, s->disk_bytes, skipped);
    return n;
}

int srv_disk_open(srv_sessions *s, const srv_server *srv, const char *dir, size_t max_bytes,
                  char *err, size_t cap) {
    struct stat st;
    if (strlen(dir) >= 1000) {
        snprintf(err, cap, "--session-dir: the path is too long");
        return -1;
    }
    if (stat(dir, &st)) {
        snprintf(err, cap, "--session-dir %s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, cap, "--session-dir %s: not a directory", dir);
        return -1;
    }
    char probe[1100];
    snprintf(probe, sizeof probe, "%s/.rosa-write-test.%ld.part", dir, (long)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, cap, "--session-dir %s: cannot write there: %s", dir, strerror(errno));
        return -1;
    }
    close(fd);
    unlink(probe);
    srv_disk *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    d->s = s;
    d->srv = srv;
    snprintf(d->dir, sizeof d->dir, "%s", dir);
    d->max_bytes = max_bytes;
    const char *delay = getenv("ROSA_TEST_DISK_DELAY_MS");
    if (delay) d->test_delay = atof(delay) / 1000.0;
    pthread_cond_init(&d->cv, NULL);
    pthread_cond_init(&d->done_cv, NULL);
    pthread_mutex_lock(&s->mu);
    s->disk = d;
    scan(d);
    trim_locked(d);
    pthread_mutex_unlock(&s->mu);
    if (pthread_create(&d->thread, NULL, disk_main, d)) {
        snprintf(err, cap, "cannot start the disk thread");
        s->disk = NULL;
        free(d);
        return -1;
    }
    return 0;
}

void srv_disk_close(srv_sessions *s) {
    srv_disk *d = s->disk;
    if (!d) return;
    pthread_mutex_lock(&s->mu);
    d->stop = 1;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(d->thread, NULL); /* (it finishes what is queued first) */
    pthread_mutex_lock(&s->mu);
    srv_save *done = srv_disk_take_done_locked(s);
    pthread_mutex_unlock(&s->mu);
    srv_disk_free_done(done);
    pthread_cond_destroy(&d->cv);
    pthread_cond_destroy(&d->done_cv);
    s->disk = NULL;
    free(d);
}
