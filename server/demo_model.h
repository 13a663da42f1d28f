/* demo_model.h: write the built-in COPY-DEMO checkpoint (model, ROSA adapter, byte-level
 * tokenizer.json) into a cache directory, once; later calls only return the paths. */
#ifndef SRV_DEMO_MODEL_H
#define SRV_DEMO_MODEL_H
#include <stddef.h>
/* cache_dir NULL: $XDG_CACHE_HOME/rosa-serve/demo-copy-v1 (or ~/.cache/..., or, with neither
 * set, ${TMPDIR:-/tmp}/rosa-serve-<uid>/... in a private directory, refused if it is not).
 * Fills the model directory, adapter file and tokenizer.json paths.  0 or -1 with err set. */
int srv_demo_model_write(const char *cache_dir, char *model_dir, size_t mlen, char *adapter,
                         size_t alen, char *tokenizer, size_t tlen, char *err, size_t errlen);
int srv_demo_default_dir(char *out, size_t n, char *err, size_t errlen);
#endif
