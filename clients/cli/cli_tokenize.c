/* cli_tokenize.c: tokenize / detokenize / bench tokenize (placeholder until the tokenizer lands). */
#include <stdio.h>
#include "cli.h"
int cli_tokenize(int argc, char **argv) { fprintf(stderr, "rosa-cli tokenize: not built yet\n"); return 2; }
int cli_detokenize(int argc, char **argv) { fprintf(stderr, "rosa-cli detokenize: not built yet\n"); return 2; }
int cli_bench_tokenize(int argc, char **argv) { fprintf(stderr, "rosa-cli bench tokenize: not built yet\n"); return 2; }
