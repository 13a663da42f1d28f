/* session_file.h: the route section of a session file, for rosa-cli bench session-file (which
 * times it on a model-scale route set without a model) and session_file.c. */
#ifndef ROSA_SESSION_FILE_H
#define ROSA_SESSION_FILE_H

#include "core/session_io.h"
#include "rosa/rosa_routes.h"

/* Every route of rs: its header (ROSA__ROUTE_HDR_WORDS words) then its arrays.  0 or an error. */
int rosa__routes_write(rosa__sio *w, const rosa__routes *rs);
/* Into rs (fresh, from rosa__routes_new with the file's route count): every route, each
 * header checked (rosa__route_check_hdr, and t == pos) and its arrays' bytes checked against
 * the bytes left in the file before anything is allocated, then the route's structure
 * (rosa__route_check).  0 or an error (rs then holds partial routes: free it). */
int rosa__routes_read(rosa__sio *r, rosa__routes *rs, int64_t pos);
#endif
