/* cli.h — the subcommands of `sd`; each takes (argc, argv) with argv[0] = its own name, returns the exit status. */
#ifndef CLI_CLI_H
#define CLI_CLI_H

int cmd_info(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_batch(int argc, char **argv);   /* cmd_batch.c */
int cmd_batch_merge(int argc, char **argv); /* cmd_batch_merge.c: sd batch merge */
int cmd_compare(int argc, char **argv); /* cmd_compare.c */
int cmd_serve(int argc, char **argv);   /* cmd_serve.c: the HTTP server (cli/serve/) */

#endif
