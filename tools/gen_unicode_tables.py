#!/usr/bin/env python3
"""gen_unicode_tables.py — writes text_encoder/unicode_tables.c, the Unicode data the CLIP tokenizer needs.

Usage:  /work/pyenv/bin/python tools/gen_unicode_tables.py [out.c]      (default text_encoder/unicode_tables.c)

Sources (package versions: transformers 5.23.0, tokenizers 0.23.3, Python 3.11 unicodedata 14.0.0, ftfy 6.3.1):
  * Character classes \\p{L} / \\p{N} and the per-character lowercase map are read from the reference engine itself:
    the pre-tokenizer and Lowercase normalizer of transformers' CLIPTokenizer (Hugging Face `tokenizers`, whose
    regex engine carries newer Unicode data than Python 3.11's unicodedata). Each code point c is probed:
    "a"+c+"a" stays one piece  -> letter; c+c gives two pieces -> number (numbers are split one per token).
    The counts of code points where unicodedata / the `regex` module disagree are printed (new scripts only).
  * Canonical decompositions, combining classes and primary composites (NFC) come from unicodedata; every single
    code point's NFC and NFD is cross-checked against tokenizers' NFC/NFD normalizers and differences printed.
  * ftfy's width map (U+3000, U+FF01..U+FFEF via NFKC) and Windows-1252 for C1 controls are computed as ftfy does.
  * HTML named character references: the HTML 4 set (html.entities.name2codepoint) plus &apos;, with and
    without the semicolon where Python's html5 table lists both spellings; ftfy's all-caps variants of them.
"""
import html
import html.entities
import sys
import unicodedata

import regex
import tokenizers
import transformers
from tokenizers import Regex, normalizers, pre_tokenizers

OUT = sys.argv[1] if len(sys.argv) > 1 else "text_encoder/unicode_tables.c"
ALL = [cp for cp in range(0x110000) if not 0xD800 <= cp < 0xE000]

# The CLIP pre-tokenizer exactly as transformers 5.23 builds it (tokenization_clip.py), without a vocabulary.
CLIP_SPLIT = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
split = pre_tokenizers.Split(Regex(CLIP_SPLIT), behavior="removed", invert=True)
lower = normalizers.Lowercase()
nfc, nfd = normalizers.NFC(), normalizers.NFD()


def hf_class(c):
    n = len(split.pre_tokenize_str("a" + c + "a"))
    if n == 1:
        return "L"
    if n == 2:
        return "S"
    return "N" if len(split.pre_tokenize_str(c + c)) == 2 else "P"


def ranges(cps):
    out = []
    for cp in cps:
        if out and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return out


def main():
    cls = {cp: hf_class(chr(cp)) for cp in ALL}
    letters = [cp for cp in ALL if cls[cp] == "L"]
    numbers = [cp for cp in ALL if cls[cp] == "N"]
    spaces = [cp for cp in ALL if cls[cp] == "S"]
    rl, rn, rs = regex.compile(r"\p{L}"), regex.compile(r"\p{N}"), regex.compile(r"\s")
    d_ud = sum(1 for cp in ALL if (cls[cp] == "L") != unicodedata.category(chr(cp)).startswith("L")
               or (cls[cp] == "N") != unicodedata.category(chr(cp)).startswith("N"))
    d_re = sum(1 for cp in ALL if (cls[cp] == "L") != bool(rl.match(chr(cp)))
               or (cls[cp] == "N") != bool(rn.match(chr(cp))) or (cls[cp] == "S") != bool(rs.match(chr(cp))))
    print(f"classes: {len(letters)} letters, {len(numbers)} numbers, {len(spaces)} spaces; "
          f"L/N differ from unicodedata {unicodedata.unidata_version} at {d_ud}, from regex {regex.__version__} at {d_re}")

    # Lowercase: one code point -> one code point, except U+0130 (handled in C). Encoded as runs
    # (lo, hi, stride, delta): every stride-th code point in [lo, hi] maps to cp + delta.
    low = {}
    for cp in ALL:
        s = lower.normalize_str(chr(cp))
        if s != chr(cp):
            if len(s) != 1:
                assert cp == 0x130 and s == "i\u0307", (hex(cp), s)
                continue
            low[cp] = ord(s) - cp
    runs = []
    for cp in sorted(low):
        d = low[cp]
        if runs:
            lo, hi, stride, delta = runs[-1]
            if delta == d and ((stride == 1 and cp == hi + 1) or (stride == 2 and cp == hi + 2)):
                runs[-1][1] = cp
                continue
            if delta == d and lo == hi and cp in (hi + 1, hi + 2):
                runs[-1] = [lo, cp, cp - hi, d]
                continue
        runs.append([cp, cp, 1, d])
    print(f"lowercase: {len(low)} code points in {len(runs)} runs")

    # NFC data from unicodedata, cross-checked against tokenizers.
    ccc = [(cp, unicodedata.combining(chr(cp))) for cp in ALL if unicodedata.combining(chr(cp))]
    ccc_runs = []
    for cp, c in ccc:
        if ccc_runs and ccc_runs[-1][1] == cp - 1 and ccc_runs[-1][2] == c:
            ccc_runs[-1][1] = cp
        else:
            ccc_runs.append([cp, cp, c])
    decomp, comp = [], []
    for cp in ALL:
        if 0xAC00 <= cp <= 0xD7A3:
            continue  # Hangul syllables are algorithmic
        d = unicodedata.decomposition(chr(cp))
        if not d or d.startswith("<"):
            continue
        parts = [int(x, 16) for x in d.split()]
        assert len(parts) in (1, 2)
        decomp.append((cp, parts[0], parts[1] if len(parts) == 2 else 0))
        # A primary composite is a two-part canonical decomposition that NFC keeps composed.
        if len(parts) == 2 and unicodedata.normalize("NFC", chr(cp)) == chr(cp):
            comp.append((parts[0], parts[1], cp))
    comp.sort()
    nfc_diff = [hex(cp) for cp in ALL if nfc.normalize_str(chr(cp)) != unicodedata.normalize("NFC", chr(cp))
                or nfd.normalize_str(chr(cp)) != unicodedata.normalize("NFD", chr(cp))]
    print(f"nfc: {len(ccc_runs)} ccc runs, {len(decomp)} decompositions, {len(comp)} compositions; "
          f"single-code-point NFC/NFD differences vs tokenizers: {nfc_diff}")

    # ftfy's fix_character_width map and Windows-1252 for C1 controls.
    width = [(0x3000, 0x20, 0)]
    for cp in range(0xFF01, 0xFFF0):
        alt = unicodedata.normalize("NFKC", chr(cp))
        if alt != chr(cp):
            assert len(alt) <= 2, hex(cp)  # U+FFE3 FULLWIDTH MACRON -> space + U+0304
            width.append((cp, ord(alt[0]), ord(alt[1]) if len(alt) == 2 else 0))
    c1 = []
    for b in range(0x80, 0xA0):
        try:
            c1.append(ord(bytes([b]).decode("cp1252")))
        except UnicodeDecodeError:
            c1.append(b)  # ftfy's "sloppy" codec keeps the undefined bytes as the same code point

    # HTML entities (see module comment): name (without '&') -> UTF-8 value.
    ent = {}
    base = set(html.entities.name2codepoint) | {"apos"}
    for name, val in html.entities.html5.items():
        if name.rstrip(";") in base:
            ent[name] = val
    ftfy_upper = {}
    for name, val in ent.items():
        if name.endswith(";") and name == name.lower():
            up = "&" + name.upper()
            if html.unescape(up) == up:
                ftfy_upper[name.upper()] = val.upper()
    print(f"html: {len(ent)} names (+{len(ftfy_upper)} ftfy all-caps)")

    w = []
    w.append("/* unicode_tables.c — GENERATED by tools/gen_unicode_tables.py; do not edit. Unicode data for the CLIP")
    w.append(" * tokenizer: letter/number classes and lowercase map as Hugging Face tokenizers "
             f"{tokenizers.__version__} (transformers {transformers.__version__}) sees them,")
    w.append(f" * NFC data from Python unicodedata {unicodedata.unidata_version}, ftfy width map, cp1252, "
             "HTML 4 entity names. See the script for how each was derived. */")
    w.append('#include "unicode.h"\n')

    def emit_ranges(name, rr):
        w.append(f"const clip_uni_range {name}[] = {{")
        for i in range(0, len(rr), 6):
            w.append("    " + " ".join(f"{{0x{a:X},0x{b:X}}}," for a, b in rr[i:i + 6]))
        w.append("};")
        w.append(f"const int {name}_n = {len(rr)};\n")

    emit_ranges("clip_uni_letter", ranges(letters))
    emit_ranges("clip_uni_number", ranges(numbers))
    w.append("const clip_uni_case_run clip_uni_lower_runs[] = {")
    for i in range(0, len(runs), 4):
        w.append("    " + " ".join(f"{{0x{a:X},0x{b:X},{d},{s}}}," for a, b, s, d in runs[i:i + 4]))
    w.append("};")
    w.append(f"const int clip_uni_lower_runs_n = {len(runs)};\n")
    w.append("const clip_uni_ccc_run clip_uni_ccc[] = {")
    for i in range(0, len(ccc_runs), 5):
        w.append("    " + " ".join(f"{{0x{a:X},0x{b:X},{c}}}," for a, b, c in ccc_runs[i:i + 5]))
    w.append("};")
    w.append(f"const int clip_uni_ccc_n = {len(ccc_runs)};\n")
    w.append("const clip_uni_triple clip_uni_decomp[] = { /* cp -> first, second (0: singleton) */")
    for i in range(0, len(decomp), 4):
        w.append("    " + " ".join(f"{{0x{a:X},0x{b:X},0x{c:X}}}," for a, b, c in decomp[i:i + 4]))
    w.append("};")
    w.append(f"const int clip_uni_decomp_n = {len(decomp)};\n")
    w.append("const clip_uni_triple clip_uni_comp[] = { /* first, second -> composite; sorted by (first, second) */")
    for i in range(0, len(comp), 4):
        w.append("    " + " ".join(f"{{0x{a:X},0x{b:X},0x{c:X}}}," for a, b, c in comp[i:i + 4]))
    w.append("};")
    w.append(f"const int clip_uni_comp_n = {len(comp)};\n")
    w.append("const clip_uni_triple clip_uni_width[] = { /* cp -> one or two code points */")
    for i in range(0, len(width), 4):
        w.append("    " + " ".join(f"{{0x{a:X},0x{b:X},0x{c:X}}}," for a, b, c in width[i:i + 4]))
    w.append("};")
    w.append(f"const int clip_uni_width_n = {len(width)};\n")
    w.append("const uint16_t clip_uni_cp1252[32] = {")
    w.append("    " + ", ".join(f"0x{c:X}" for c in c1))
    w.append("};\n")

    def cstr(s):
        return '"' + "".join(ch if 0x20 <= ord(ch) < 0x7F and ch not in '"\\?' else
                             "".join(f"\\{b:03o}" for b in ch.encode()) for ch in s) + '"'

    w.append("const clip_uni_entity clip_uni_entities[] = { /* sorted by name (strcmp) */")
    for name in sorted(ent, key=lambda s: s.encode()):
        w.append(f"    {{{cstr(name)}, {cstr(ent[name])}}},")
    w.append("};")
    w.append(f"const int clip_uni_entities_n = {len(ent)};\n")
    w.append("const clip_uni_entity clip_uni_entities_upper[] = { /* ftfy's all-caps names, with ';' */")
    for name in sorted(ftfy_upper, key=lambda s: s.encode()):
        w.append(f"    {{{cstr(name)}, {cstr(ftfy_upper[name])}}},")
    w.append("};")
    w.append(f"const int clip_uni_entities_upper_n = {len(ftfy_upper)};")
    with open(OUT, "w") as f:
        f.write("\n".join(w) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
