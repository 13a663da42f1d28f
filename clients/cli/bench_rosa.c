/* bench_rosa.c: `rosa-cli bench rosa` (placeholder). */
#include <stdio.h>
#include "cli.h"
int cli_bench_rosa(int argc, char **argv) { fprintf(stderr, "rosa-cli bench rosa: not built yet\n"); return 2; }
