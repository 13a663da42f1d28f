/* session_disk.h: the session disk tier (--session-dir): idle sessions pushed out of RAM are
 * saved there by a disk thread of their own, and restored on the engine thread when a request
 * names them again.
 *
 * Threads: the loop and engine threads only move pointers under the sessions mutex (an evicted
 * session's rs and toks go to a save job); the disk thread writes, reads (restores: the
 * request waits in the engine's queue meanwhile, the other streams go on) and removes files;
 * the engine thread is still the only one that frees rosa_sessions (finished saves and
 * abandoned restores wait on a done list for it).  Files: session_files.h. */
#ifndef SRV_SESSION_DISK_H
#define SRV_SESSION_DISK_H

#include <stddef.h>

#include "sessions.h"

struct srv_server;

#define SRV_DISK_MAX_FILES 100000 /* sessions kept on disk at most (besides --session-dir-bytes) */

/* Start-up: check that dir is a writable directory, learn the sessions saved there (bounded;
 * unreadable files are skipped with a warning) and start the disk thread.  max_bytes: both
 * files of every session together (0: no limit).  0, or -1 with a message in err. */
int srv_disk_open(srv_sessions *s, const struct srv_server *srv, const char *dir,
                  size_t max_bytes, char *err, size_t cap);
/* After the engine stopped: finish queued work, stop the thread, free. */
void srv_disk_close(srv_sessions *s);

/* mutex held: e, unlinked from the memory list, goes to disk: a save job takes its state.
 * Returns 1 if taken (e is now on the disk list), 0 if it is to be dropped. */
int srv_disk_spill_locked(srv_sessions *s, srv_sess *e);
/* mutex held: e, unlinked from its list, is being deleted: its queued save is cancelled and
 * its files removed. */
void srv_disk_forget_locked(srv_sessions *s, srv_sess *e);
/* mutex held: link e at the head of the disk list / unlink it */
void srv_disk_push_locked(srv_sessions *s, srv_sess *e);
void srv_disk_unlink_locked(srv_sessions *s, srv_sess *e);
/* mutex held: the finished save jobs, for the engine thread to free (srv_disk_free_done) */
struct srv_save *srv_disk_take_done_locked(srv_sessions *s);
void srv_disk_free_done(struct srv_save *done);
/* Engine thread, admission of the request that reserved e: 1 while e's state is being read by
 * the disk thread (the request waits in the queue, the other streams go on; s->wake is called
 * when it is read), 0 when e is ready for srv_disk_bring_back (restored, failed: empty, or
 * nothing to read). */
int srv_disk_restore_wait(srv_sessions *s, srv_sess *e);
/* mutex held: the request that reserved e ends before its restore was used: the restore is
 * cancelled or its result freed; the files stay. */
void srv_disk_abandon_locked(srv_sessions *s, srv_sess *e);
/* Engine thread, e reserved by the request about to run: bring its state back into e->rs /
 * e->toks / e->n from a pending save or from its files; on any failure e is left empty (the
 * session is rebuilt from the prompt), a warning logged and counted. */
void srv_disk_bring_back(srv_sessions *s, srv_sess *e, rosa_model *m, int vocab);
/* Engine thread: wait until every queued save and removal is done. */
void srv_disk_drain(srv_sessions *s);

#endif
