/* cli.h: the subcommands of rosa-cli, one file each; main.c dispatches. */
#ifndef ROSA_CLI_H
#define ROSA_CLI_H
int cli_logits(int argc, char **argv);
int cli_generate(int argc, char **argv);
int cli_info(int argc, char **argv);
int cli_bench_decode(int argc, char **argv);
int cli_bench_rosa(int argc, char **argv);
int cli_bench_rosa_step(int argc, char **argv);
int cli_tokenize(int argc, char **argv);
int cli_detokenize(int argc, char **argv);
int cli_bench_tokenize(int argc, char **argv);
int cli_chat(int argc, char **argv);
int cli_perplexity(int argc, char **argv);
#endif
