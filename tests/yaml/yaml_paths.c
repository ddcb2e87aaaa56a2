/* yaml_paths.c — prints every scalar of a YAML file as one line "path=value" (mapping keys and sequence indexes
 * joined by '.': spec.template.spec.containers.0.command.3=--shard), so that a shell test can check a manifest
 * with grep. The parsing is libyaml's (the C parser PyYAML itself uses); a document it refuses exits 1 with the
 * problem and its line. Usage: yaml_paths FILE */
#include <stdio.h>
#include <string.h>

#include <yaml.h>

#define MAX_DEPTH 64

typedef struct level {
    int seq;        /* 1: a sequence (its next index in n), 0: a mapping */
    int n;          /* sequence: next index; mapping: 1 when the next scalar is a key */
    size_t len;     /* length of the path before this level's own part */
} level;

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: yaml_paths FILE\n"); return 2; }
    FILE *fp = fopen(argv[1], "rb");
    if (!fp) { perror(argv[1]); return 1; }
    yaml_parser_t p;
    yaml_event_t ev;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, fp);
    level st[MAX_DEPTH];
    int depth = 0, rc = 0, done = 0;
    char path[4096] = "";
    while (!done) {
        if (!yaml_parser_parse(&p, &ev)) {
            fprintf(stderr, "%s:%zu:%zu: %s\n", argv[1], p.problem_mark.line + 1, p.problem_mark.column + 1,
                    p.problem ? p.problem : "invalid YAML");
            rc = 1;
            break;
        }
        level *top = depth ? &st[depth - 1] : NULL;
        /* the path of the value this event starts: a sequence adds its index, a mapping its key (set below) */
        if (top && top->seq && (ev.type == YAML_SCALAR_EVENT || ev.type == YAML_SEQUENCE_START_EVENT ||
                                ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_ALIAS_EVENT)) {
            path[top->len] = 0;
            snprintf(path + strlen(path), sizeof path - strlen(path), "%s%d", top->len ? "." : "", top->n++);
        }
        switch (ev.type) {
        case YAML_SCALAR_EVENT:
            if (top && !top->seq && top->n) { /* a key */
                path[top->len] = 0;
                snprintf(path + strlen(path), sizeof path - strlen(path), "%s%s", top->len ? "." : "", (char *)ev.data.scalar.value);
                top->n = 0;
            } else {
                printf("%s=%s\n", path, (char *)ev.data.scalar.value);
                if (top && !top->seq) top->n = 1;
            }
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (depth == MAX_DEPTH) { fprintf(stderr, "%s: nested more than %d deep\n", argv[1], MAX_DEPTH); rc = 1; done = 1; break; }
            st[depth].seq = ev.type == YAML_SEQUENCE_START_EVENT;
            st[depth].n = st[depth].seq ? 0 : 1;
            st[depth].len = strlen(path);
            depth++;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            path[st[depth].len] = 0;
            if (depth && !st[depth - 1].seq) st[depth - 1].n = 1;
            break;
        case YAML_ALIAS_EVENT:
            printf("%s=*%s\n", path, (char *)ev.data.alias.anchor);
            if (top && !top->seq) top->n = 1;
            break;
        case YAML_STREAM_END_EVENT: done = 1; break;
        default: break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    fclose(fp);
    return rc;
}
