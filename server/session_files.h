/* session_files.h: the files of one session under --session-dir, and the sidecar format.
 *
 * A session saved to disk is two files named by a hash of its table key ("owner/id" or the id;
 * any characters are safe in it): HEX.rosa, the engine state (rosa_session_save), and HEX.side,
 * the sidecar: a 64-byte header, the key itself (to tell hash collisions apart) and the tokens
 * fed so far (the server's reuse decision needs them; the engine file does not hold them).  The
 * sidecar names its engine file by size and last 8 bytes (the engine file's checksum), so a
 * sidecar never pairs with another save's engine file.  Everything read is bounded and checked.
 * Plain file I/O, no threads: the disk thread saves, the engine thread restores. */
#ifndef SRV_SESSION_FILES_H
#define SRV_SESSION_FILES_H

#include <stddef.h>
#include <stdint.h>

#include "rosa.h"

#define SRV_SIDE_MAGIC "ROSASIDE"
#define SRV_SIDE_VERSION 1u
#define SRV_SIDE_HDR 64u
#define SRV_SIDE_MAX_ID 199          /* srv_sess.id holds 200 bytes with the NUL */
#define SRV_SIDE_MAX_TOKENS (1 << 28) /* a count above it is refused before anything is read */

/* "HEX" of a table key: 16 lowercase hex digits of its 64-bit FNV-1a hash. */
void srv_sfile_name(const char *key, char out[17]);
/* dir + "/" + name + ext into out; -1 when it does not fit. */
int srv_sfile_path(char *out, size_t cap, const char *dir, const char *name, const char *ext);

/* What a sidecar header says (srv_sfile_peek). */
typedef struct srv_side_info {
    char id[SRV_SIDE_MAX_ID + 1];
    int64_t n;              /* tokens */
    uint64_t engine_bytes;  /* size of the engine file it belongs to */
    uint64_t engine_tail;   /* that file's last 8 bytes */
    uint64_t side_bytes;    /* the sidecar's own size */
} srv_side_info;

/* Save: rs to dir/HEX.rosa and its sidecar to dir/HEX.side, each written under a name of its
 * own first and renamed into place (another replica saving the same session at the same time:
 * the last one wins; a sidecar and engine file from two saves do not match and are refused on
 * restore).  *bytes: both files' size.  0 or a rosa_err (ROSA_ERR_IO: unwritable, disk full);
 * on error nothing of this save is left. */
int srv_sfile_save(const char *dir, const char *key, rosa_session *rs, const int32_t *toks,
                   int64_t n, size_t *bytes);

/* Read and check a sidecar's header and key (not the tokens): the start-up scan.  0, 1 when
 * absent, or ROSA_ERR_FORMAT / ROSA_ERR_UNSUPPORTED (a newer version) / ROSA_ERR_IO. */
int srv_sfile_peek(const char *path, srv_side_info *out);

/* The whole sidecar at path, checked (checksum, token ids < vocab): *toks (malloc) holds
 * out->n tokens.  0, 1 when absent, or ROSA_ERR_FORMAT / UNSUPPORTED / IO / NOMEM. */
int srv_sfile_read_side(const char *path, srv_side_info *out, int32_t **toks, int vocab);

/* Restore the session of `key` from dir.  Returns 0 (*rs, *toks (malloc), *n set), 1 when there
 * is no sidecar for key (absent, or a colliding key's), or a rosa_err: ROSA_ERR_FORMAT (bad
 * sidecar, a sidecar and engine file that do not belong together, a token count the state does
 * not have), ROSA_ERR_MISMATCH (another model or run options), ROSA_ERR_UNSUPPORTED (newer
 * format), ROSA_ERR_IO, ROSA_ERR_NOMEM.  vocab bounds the token ids. */
int srv_sfile_restore(const char *dir, const char *key, rosa_model *m, int vocab,
                      rosa_session **rs, int32_t **toks, int64_t *n);

/* Remove dir/HEX.rosa and .side of key, unless the sidecar there belongs to another key. */
void srv_sfile_remove(const char *dir, const char *key);

#endif
