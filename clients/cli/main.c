/* main.c: rosa-cli entry point; dispatches to one file per subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "rosa.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: rosa-cli COMMAND [options]\n"
            "  logits     --model DIR [--adapter F] [run options] --prompt-ids F.json --out F.f32 [--dest-out F.i32]\n"
            "  generate   --model DIR [--adapter F] [run options] --prompt-ids F.json -n N [--temperature T] [--seed S]\n"
            "  info       --model DIR [--adapter F] [run options]\n"
            "  bench rosa --routes R --tokens T [--bits M] [--threads N] [--mode grouped,route] [--group G]\n"
            "  bench rosa-step [--shape 0.6b|1.7b | --layers L --routes R] [--batch B] [--context N]\n"
            "               [--tokens T] [--threads N] [--dist random|low]\n"
            "  bench decode [--tokens N] [--threads N] [--model DIR] [--device cuda] [--precision P] [--batch B]\n"
            "               [--shape 0.6b|1.7b] [--window W] [--prompt N] [--rollback-tokens N]\n"
            "               [--rosa-only | --no-rosa-run]\n"
            "  bench prefill [same options; --prompt N is the prompt length, default 8192]\n"
            "  bench tokenize --tokenizer F [--text F]\n"
            "  tokenize   --tokenizer F [--special] TEXT|-\n"
            "  detokenize --tokenizer F ID...|-\n"
            "  chat       [--url URL] [--session ID] [--api-key KEY] [--max-tokens N] (interactive)\n"
            "  perplexity --model DIR [run options] (--file TEXT [--tokenizer F] | --ids F.json)\n"
            "             [--ctx N] [--window W] [--modes window,rosa,global] [--max-tokens N]\n"
            "\nrun options (the same words in rosa-server):\n%s",
            rosa_load_opts_help());
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *c = argv[1];
    if (!strcmp(c, "logits")) return cli_logits(argc - 1, argv + 1);
    if (!strcmp(c, "generate")) return cli_generate(argc - 1, argv + 1);
    if (!strcmp(c, "info")) return cli_info(argc - 1, argv + 1);
    if (!strcmp(c, "tokenize")) return cli_tokenize(argc - 1, argv + 1);
    if (!strcmp(c, "chat")) return cli_chat(argc - 1, argv + 1);
    if (!strcmp(c, "perplexity")) return cli_perplexity(argc - 1, argv + 1);
    if (!strcmp(c, "detokenize")) return cli_detokenize(argc - 1, argv + 1);
    if (!strcmp(c, "bench") && argc >= 3) {
        if (!strcmp(argv[2], "rosa")) return cli_bench_rosa(argc - 2, argv + 2);
        if (!strcmp(argv[2], "rosa-step")) return cli_bench_rosa_step(argc - 2, argv + 2);
        if (!strcmp(argv[2], "decode") || !strcmp(argv[2], "prefill")) return cli_bench_decode(argc - 2, argv + 2);
        if (!strcmp(argv[2], "tokenize")) return cli_bench_tokenize(argc - 2, argv + 2);
    }
    fprintf(stderr, "rosa-cli: unknown command '%s'\n", c);
    usage(stderr);
    return 2;
}
