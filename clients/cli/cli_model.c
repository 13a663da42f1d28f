/* cli_model.c: logits / generate / info (placeholder). */
#include <stdio.h>
#include "cli.h"
int cli_logits(int argc, char **argv) { return 2; }
int cli_generate(int argc, char **argv) { return 2; }
int cli_info(int argc, char **argv) { return 2; }
int cli_bench_decode(int argc, char **argv) { return 2; }
