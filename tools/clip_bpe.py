"""clip_bpe.py — CLIP's byte-level BPE alphabet, shared by the tools that write tokenizer files or goldens.

byte_encoder(): every byte 0..255 mapped to the printable unicode character that stands for it in CLIP's
vocabulary (facts §3.1), in the vocabulary's own order: the 188 printable Latin-1 bytes keep their code point and
come first, the other 68 become U+0100.. in byte order. list(byte_encoder().values()) are token ids 0..255.
"""


def byte_encoder():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))
