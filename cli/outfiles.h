/* outfiles.h — where the commands write: every output path is checked before the model loads (so a bad -o costs
 * nothing and leaves nothing behind), and the temp files of an interrupted run are removed on the next one.
 *
 * Files appear through a temp file ".NAME.XXXXXX" in the same folder and a rename (sd_save_png,
 * clikit_write_file), so a run killed while writing leaves such a file and never a half-written NAME. */
#ifndef CLI_OUTFILES_H
#define CLI_OUTFILES_H

#include <stddef.h>

/* Checks that the file `path` can be written: a non-empty path naming a file; if it exists, a regular file and
 * `overwrite` given (a folder is refused even then); its folder exists (or, with `mkdirs`, can be made) and takes
 * new files (probed by making and removing one, which also catches /proc, read-only mounts and permissions).
 * Prints one "error: ..." line naming the file. Returns 0 or -1. */
int outfiles_check_file(const char *path, int overwrite, int mkdirs);

/* A picture's output name must end in .png (any case): sd writes PNG data only, and a .jpg or .webp name holding
 * it misleads every program that trusts the name. `flag` names the option in the message. Returns 0 or -1 (printed). */
int outfiles_check_png(const char *path, const char *flag);

/* `path` as an absolute path, for comparing spellings of files that may not exist yet: realpath of its longest
 * existing part (links resolved), the rest appended and normalized lexically ("." and ".." resolved: it does not
 * exist, so it holds no links). Returns 0, or -1 when it does not fit in cap. */
int outfiles_resolve(const char *path, char *out, size_t cap);

/* 1 when the paths `a` and `b` name the same file: the same inode when both exist (so "./x.png", "dir/../x.png", a
 * hard link or a symlink to it all match), else the same outfiles_resolve spelling; 0 otherwise. */
int outfiles_same_file(const char *a, const char *b);

/* 1 when `path` names the file or folder `top` or lies under it ("g.png/cells" is within "g.png"), by
 * outfiles_same_file on each of its folders; 0 otherwise. */
int outfiles_within(const char *path, const char *top);

/* Checks that `dir` is a folder that takes new files, or can be made as one. Returns 0 or -1 (printed). */
int outfiles_check_dir(const char *dir);

/* Removes the temp files that an interrupted run left beside the files `names` (paths relative to `dir`, which
 * may be ""), and only those. Sorts `names`. */
void outfiles_clean_temps(const char *dir, char **names, int n);

#endif
