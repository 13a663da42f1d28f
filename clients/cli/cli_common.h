/* cli_common.h: option parsing shared by the model subcommands of rosa-cli. */
#ifndef ROSA_CLI_COMMON_H
#define ROSA_CLI_COMMON_H
#include <stddef.h>
#include <stdint.h>
#include "rosa.h"

typedef struct cli_model_args {
    const char *model;
    rosa_load_opts opts;
} cli_model_args;

/* Consumes argv[*i] (and its value) if it is a model/run option; returns 1 if consumed,
 * 0 if not a model option, -1 on a bad value (message printed). */
int cli_parse_model_opt(cli_model_args *a, int argc, char **argv, int *i);
/* Load the model or print the error; returns NULL on failure. */
rosa_model *cli_load_model(const cli_model_args *a);
/* Read a JSON array of token ids; returns count or -1 (message printed). *ids malloc'd. */
int cli_read_ids(const char *path, int32_t **ids);
/* Parse a non-negative integer argument; -1 on error. */
long cli_parse_long(const char *s, long lo, long hi, const char *what);
#endif
