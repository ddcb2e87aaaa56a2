/* control_flags.h — parsing the ControlNet flags into sd_control entries (control_flags.c). */
#ifndef CLI_CONTROL_FLAGS_H
#define CLI_CONTROL_FLAGS_H

#include <stdio.h>

#include "../sd.h"

typedef struct cli_controls {
    sd_control c[SD_MAX_CONTROLS];
    sd_image img[SD_MAX_CONTROLS];
    const char *image_path[SD_MAX_CONTROLS];
    int count[16];        /* flags seen, per kind */
    int guess, loaded;
} cli_controls;

void cli_controls_init(cli_controls *cc);
/* Takes one ControlNet flag ("--control-net", "--canny" (no value), "--control-guess-mode" (no value) ...): 1 when
 * taken, 0 when it is no ControlNet flag, -1 after printing an "error: ..." line. */
int cli_control_flag(cli_controls *cc, const char *flag, const char *value);
/* If argv[*i] is a ControlNet flag ("--control-net P", "--control-net=P", "--canny"), takes it (advancing *i past its
 * value): 1; 0 when it is another flag; -1 after printing an error. */
int cli_control_parse(int argc, char **argv, int *i, cli_controls *cc);
/* Checks the counts, loads the control images and points gp at the controls (or at those --from-png stored,
 * when no --control-net was given). Returns 0, or -1 after printing the error. */
int cli_controls_finish(cli_controls *cc, sd_gen_params *gp);
void cli_controls_free(cli_controls *cc);
void cli_controls_help(FILE *out);

#endif
