/* bench_decode.c: `rosa-cli bench decode` (placeholder until the benchmark lands). */
#include <stdio.h>
#include "cli.h"
int cli_bench_decode(int argc, char **argv) { fprintf(stderr, "rosa-cli bench decode: not built yet\n"); return 2; }
