/* merges_blob.c — embeds text_encoder/bpe_simple_vocab_16e6.txt.gz (open_clip 3.3.0, MIT, see NOTICE; sha256
 * 924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a) in the library; tokenizer.c inflates it.
 * The path is relative to the repository root, where the Makefile runs the compiler (and lists the .gz as a
 * prerequisite of this object so a new file rebuilds it). */
__asm__(".section .rodata\n"
        ".balign 16\n"
        ".global clip_merges_gz\n"
        ".type clip_merges_gz, @object\n"
        "clip_merges_gz:\n"
        ".incbin \"text_encoder/bpe_simple_vocab_16e6.txt.gz\"\n"
        ".global clip_merges_gz_end\n"
        ".type clip_merges_gz_end, @object\n"
        "clip_merges_gz_end:\n"
        ".previous\n");
