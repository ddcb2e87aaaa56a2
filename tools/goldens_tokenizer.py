#!/usr/bin/env python3
"""goldens_tokenizer.py — reference token ids and prompt windows for tests/test_tok*.c.

Usage:  /work/pyenv/bin/python tools/goldens_tokenizer.py        (writes tests/golden/tokenizer/)

Package versions (also stored in each file's metadata): transformers 5.23.0, tokenizers 0.23.3, ftfy 6.3.1,
regex 2026.11.15, open_clip_torch 3.3.0, clip-anytorch 2.6.0 (OpenAI CLIP's simple_tokenizer.py), torch 2.15.0, numpy 1.26.4.

References:
  hf     transformers CLIPTokenizer as diffusers loads it for SD 1.x (vocab.json + merges.txt built from open_clip's
         bpe_simple_vocab_16e6.txt.gz as facts.md §3.1 describes); ids without BOS/EOS.
  bang   the same with pad_token="!" (diffusers SD 2.x `tokenizer`, SDXL `tokenizer_2`).
  hf77 / bang77   tokenizer(text, padding="max_length", max_length=77, truncation=True), as diffusers calls it.
  ftfy   transformers 4.x's slow CLIPTokenizer with ftfy installed (what A1111 runs for SD 1.x), reproduced here with
         the real ftfy and regex packages and the real BPE model: special tokens split off the raw text, then per
         part whitespace_clean(ftfy.fix_text(part)).lower(), the CLIP pattern (IGNORECASE), BPE.
  orig   open_clip.tokenizer.SimpleTokenizer().encode (ftfy + html.unescape twice; OpenCLIP special tokens).
         OpenAI CLIP's SimpleTokenizer is run too; it differs only in the names of its special tokens.
Prompt windows (A1111 emphasis/chunking, facts.md §3.4) come from an independent Python model of the documented
behaviour in this file (A1111 itself is not a package): weighted segments tokenized separately with `hf`.
"""
import gzip
import html
import json
import os
import random
import re
import sys
import tempfile

import importlib.util
import ftfy
import numpy as np
import open_clip
import open_clip.tokenizer
import regex
import tokenizers
import tokenizers.normalizers
import torch
import transformers

from clip_bpe import byte_encoder
from safetensors.torch import save_file
from transformers import CLIPTokenizer

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "tokenizer")
GZ = os.path.join(os.path.dirname(open_clip.__file__), "bpe_simple_vocab_16e6.txt.gz")
VERSIONS = (f"transformers {transformers.__version__}, tokenizers {tokenizers.__version__}, ftfy {ftfy.__version__}, "
            f"regex {regex.__version__}, open_clip {open_clip.__version__}, torch {torch.__version__}, numpy {np.__version__}")


def openai_simple_tokenizer():
    """OpenAI CLIP's SimpleTokenizer, loaded from its file (the clip package's __init__ needs pkg_resources)."""
    spec = importlib.util.find_spec("clip")
    path = os.path.join(spec.submodule_search_locations[0], "simple_tokenizer.py")
    mod_spec = importlib.util.spec_from_file_location("openai_clip_simple_tokenizer", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return mod.SimpleTokenizer()


BYTE = byte_encoder()


def write_hf_files(d, n_merges=None, shuffle_ids=False):
    """vocab.json + merges.txt as in the SD repos (facts.md §3.1); optionally a small prefix and permuted ids."""
    lines = gzip.open(GZ).read().decode("utf-8").split("\n")[1:48895]
    if n_merges is not None:
        lines = lines[:n_merges]
    vocab = list(BYTE.values())
    vocab += [v + "</w>" for v in vocab]
    vocab += ["".join(m.split()) for m in lines]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    ids = list(range(len(vocab)))
    if shuffle_ids:
        random.Random(7).shuffle(ids)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({v: i for v, i in zip(vocab, ids)}, f, ensure_ascii=False)
    with open(os.path.join(d, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------- tokenizer cases

LONG = ("a breathtaking panoramic view of a misty mountain valley at sunrise, golden light streaming through "
        "ancient pine trees, a crystal clear river winding between moss covered rocks, wildflowers in the "
        "foreground, a small wooden cabin with smoke rising from its chimney, snow capped peaks in the distance, "
        "dramatic clouds, volumetric lighting, highly detailed, photorealistic, 8k resolution, award winning "
        "landscape photography, shot on a medium format camera with a wide angle lens, long exposure, soft focus "
        "background, vivid colors, national geographic style, trending on artstation, masterpiece")

# (name, text: str or bytes, {reference: reason} for documented differences of our ftfy/html subset)
CASES = [
    ("english", "a photo of an astronaut riding a horse on mars", {}),
    ("english_caps", "A Photo Of An ASTRONAUT Riding A HORSE", {}),
    ("hello", "hello world", {}),
    ("empty", "", {}),
    ("whitespace_only", "   \t\n  \r\n ", {}),
    ("spaces_around", "  leading and   trailing  spaces  ", {}),
    ("lines_tabs", "multiple\n\nlines\tand\ttabs\r\nend", {}),
    ("punct_prompt", "A cat, (masterpiece:1.2), 4k photo!!", {}),
    ("punct_runs", "wow!!! ... ??? !?!? ---- ~~~ ,,, ;; :)", {}),
    ("punct_mixed", "a.b,c;d:e/f\\g|h_i-j+k=l", {}),
    ("symbols", "email@example.com #hashtag $100 50% a&b *stars* ^caret^ {braces} <angle>", {}),
    ("quotes_ascii", "\"quoted\" 'single' `backtick`", {}),
    ("digits", "1234567890 3.14159 1,000,000 0.5", {}),
    ("digits_words", "4k 8k uhd 1080p x2y3z v1.5 sdxl1.0", {}),
    ("apostrophes", "don't stop, it's you're we've i'm you'll he'd", {}),
    ("apostrophes_caps", "DON'T IT'S YOU'RE WE'VE I'M YOU'LL HE'D", {}),
    ("apostrophes_odd", "'s 't ''s rock'n'roll o'clock !'s '' 'x", {}),
    ("accents", "Café crème brûlée naïve façade Ångström Øresund Łódź", {}),
    ("accents_decomposed", "Cafe\u0301 cre\u0300me n\u0303 A\u030a", {}),
    ("combining_order", "a\u0323\u0302 a\u0302\u0323 q\u0307\u0323 \u0301\u0301x", {}),
    ("special_case", "straße İstanbul ΟΔΟΣ ΣΑΣ Σ", {"ftfy": "final sigma (context rule approximated)"}),
    ("vietnamese", "Tiê\u0301ng Viê\u0323t có dấu", {}),
    ("cjk_japanese", "日本語のテキスト、桜の木", {}),
    ("cjk_chinese", "中文提示词，高质量，杰作", {}),
    ("hangul", "한국어 텍스트 \u1112\u1161\u11ab\u1100\u1173\u11af", {}),
    ("emoji", "🐱🎉 cat party 🎈", {}),
    ("emoji_zwj", "👨\u200d👩\u200d👧 family, 👍🏽 thumbs, ❤️ heart", {}),
    ("flags", "🇯🇵🇺🇸 flags", {}),
    ("cyrillic", "Привет мир, ЁЛКА", {}),
    ("rtl", "مرحبا بالعالم שלום", {}),
    ("devanagari_thai", "हिन्दी भाषा ภาษาไทย", {}),
    ("numbers_unicode", "①②③ Ⅻ x² ½ ٣٤ ๕", {}),
    ("math", "∑∫√π≈∞ ±×÷ ∂x/∂y", {}),
    ("fullwidth", "ＡＢＣ１２３！ ｈｉ　ｔｈｅｒｅ", {}),
    ("halfwidth_kana", "ｶﾀｶﾅ ｶﾞ ﾊﾟ", {}),
    ("ligatures", "ﬁnance ﬂower ﬀ ǆ Ĳ", {}),
    ("curly_quotes", "“Hello” ‘world’ it’s ‚low‛ „double‟ ʼn", {}),
    ("html_entities", "&amp; &lt;tag&gt; &quot;q&quot; &#39; &#x263A; &eacute; &copy &amp;amp; &apos;", {}),
    ("html_html5_only", "&checkmark; &hearts; &nbsp;x", {"orig": "&checkmark; is an HTML5-only name (not in our table)",
                                                           "ftfy": "&checkmark; is an HTML5-only name (not in our table)"}),
    ("html_with_angle", "<b>bold</b> &amp; x", {}),
    ("mojibake", "cafÃ© SchÃ¶n", {"ftfy": "ftfy.fix_encoding (mojibake repair) not implemented",
                                  "orig": "ftfy.fix_encoding (mojibake repair) not implemented"}),
    ("unicode_spaces", "a\u3000b\u00a0c\u2003d\u200be\u2028f\u0085g\u1680h", {}),
    ("controls", "a\x07b\x1bc\x1fd\x7fe\ufeff f\u200fg", {}),
    ("c1_controls", "\x93smart\x94 \x80 \x9f \x81", {}),
    ("terminal_escape", "\x1b[36;44mblue\x1b[0m text", {}),
    ("specials", "<|startoftext|>a photo<|endoftext|>", {}),
    ("specials_caps", "<|ENDOFTEXT|> x<|StartOfText|>!", {}),
    ("specials_partial", "<|endoftext <|endoftext|x <|<||>", {}),
    ("openclip_specials", "<start_of_text>a<end_of_text>", {}),
    ("bangs", "! !! !!! wow!!, amazing! hello!world ！", {}),
    ("weight_syntax", "((masterpiece)), [blurry:0.8], (cat:1.3) \\(escaped\\) BREAK next", {}),
    ("long_word", "a" * 300 + " " + "ab" * 150, {}),
    ("long_random_words", "".join(random.Random(5).choice("etaoinshrdlucmfwyp") for _ in range(2500)) + " " +
     "".join(random.Random(6).choice("abcdefghijklmnopqrstuvwxyz!?-.,") for _ in range(600)), {}),
    ("long_text", LONG, {}),
    ("long_text_x3", " ".join([LONG] * 3), {}),
    ("invalid_utf8", b"caf\xc3 \xff\xfe ok \xe2\x82 end \xf0\x9f\x98", {}),
    ("invalid_utf8_forms", b"a\xc0\xafb\xed\xa0\x80c\xf4\x90\x80\x80d\xe0\x80\xafe\x80\xbf", {}),
    ("mixed_scripts", "Tokyo東京2024年、café☕ and 🍜ramen", {}),
]


def slow_reference(hf):
    """transformers 4.x slow CLIPTokenizer with ftfy (see module comment)."""
    pat = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                        regex.IGNORECASE)
    special = {"<|startoftext|>": 49406, "<|endoftext|>": 49407}
    model = hf.backend_tokenizer.model

    def ids(text):
        out = []
        for part in re.split(r"(<\|startoftext\|>|<\|endoftext\|>)", text):
            if part in special:
                out.append(special[part])
                continue
            clean = regex.sub(r"\s+", " ", ftfy.fix_text(part)).strip().lower()
            for piece in pat.findall(clean):
                if piece in special:
                    out.append(special[piece])
                    continue
                out += [t.id for t in model.tokenize("".join(BYTE[b] for b in piece.encode("utf-8")))]
        return out
    return ids


def tokenizer_goldens(hf, bang):
    slow = slow_reference(hf)
    openclip = open_clip.tokenizer.SimpleTokenizer()
    openai = openai_simple_tokenizer()
    tensors, meta = {}, []
    for i, (name, raw, known) in enumerate(CASES):
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8")
        text = data.decode("utf-8", "replace")
        ref = {
            "hf": hf(text, add_special_tokens=False)["input_ids"],
            "bang": bang(text, add_special_tokens=False)["input_ids"],
            "hf77": hf(text, padding="max_length", max_length=77, truncation=True)["input_ids"],
            "bang77": bang(text, padding="max_length", max_length=77, truncation=True)["input_ids"],
            "ftfy": slow(text),
            "orig": openclip.encode(text),
        }
        oa = openai.encode(text)
        if oa != ref["orig"]:
            print(f"  note: {name}: OpenAI CLIP differs from OpenCLIP (special-token names): {oa[:12]} vs {ref['orig'][:12]}")
            assert "<" in text
        for k, v in ref.items():
            tensors[f"{k}.{i}"] = torch.tensor(v, dtype=torch.int32)
        meta.append({"name": name, "hex": data.hex(), "known": known})
        if i < 8 or name in ("bangs", "special_case"):
            print(f"  {name}: hf {ref['hf'][:16]}")
    diffs = sum(1 for i in range(len(CASES)) if tensors[f"hf.{i}"].tolist() != tensors[f"ftfy.{i}"].tolist())
    print(f"{len(CASES)} cases; hf and ftfy variants differ on {diffs}")
    return tensors, meta


# ---------------------------------------------------------------------------------------------- A1111 prompt model

# The attention syntax (facts.md §3.4): escapes, brackets, ":number)" closers, plain runs, stray ':'.
ATTN = re.compile(r"\\[()\[\]\\]|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()\[\]:]+|:")
BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)


def parse(text):
    """[(text, weight, is_break)]: weights are products, in bracket-closing order, of 1.1 / w / 1/1.1.
    Deliberate difference from A1111: BREAK inside brackets still breaks (A1111 would turn it into the word
    "break" with a negative weight)."""
    segs = []            # [text, weight, is_break]
    opens = {"(": [], "[": []}
    for m in ATTN.finditer(text):
        tok, num = m.group(0), m.group(1)
        if tok.startswith("\\"):
            segs.append([tok[1:], 1.0, False])
        elif tok in "([" and len(tok) == 1:
            opens[tok].append(len(segs))
        elif num is not None and opens["("]:
            start = opens["("].pop()
            for s in segs[start:]:
                s[1] *= float(num)
        elif tok == ")" and opens["("]:
            start = opens["("].pop()
            for s in segs[start:]:
                s[1] *= 1.1
        elif tok == "]" and opens["["]:
            start = opens["["].pop()
            for s in segs[start:]:
                s[1] *= 1 / 1.1
        else:
            for k, part in enumerate(BREAK.split(tok)):
                if k:
                    segs.append(["BREAK", 1.0, True])
                segs.append([part, 1.0, False])
    for start in opens["("]:
        for s in segs[start:]:
            s[1] *= 1.1
    for start in opens["["]:
        for s in segs[start:]:
            s[1] *= 1 / 1.1
    if not segs:
        segs = [["", 1.0, False]]
    merged = []
    for s in segs:
        if merged and not s[2] and not merged[-1][2] and merged[-1][1] == s[1]:
            merged[-1][0] += s[0]
        else:
            merged.append(s)
    return merged


def chunks(hf, prompt, pad_zero, backtrack=20):
    """A1111 tokenize_line: 75 tokens per window, comma backtrack, BREAK, EOS padding, BOS/EOS wrap; SD2 style
    (pad_zero) replaces everything after the first EOS of each window with 0."""
    comma = hf.convert_tokens_to_ids(",</w>")
    done, cur, curw = [], [], []
    last_comma = -1

    def flush():
        nonlocal cur, curw, last_comma
        ids = [49406] + cur + [49407] * (75 - len(cur)) + [49407]
        w = [1.0] + curw + [1.0] * (75 - len(curw)) + [1.0]
        if pad_zero:
            first = ids.index(49407)
            ids = ids[:first + 1] + [0] * (76 - first)
        done.append((ids, w))
        cur, curw, last_comma = [], [], -1

    for text, weight, is_break in parse(prompt):
        if is_break:
            flush()
            continue
        for tok in (hf(text, add_special_tokens=False)["input_ids"] if text else []):
            if tok == comma:
                last_comma = len(cur)
            elif backtrack and len(cur) == 75 and last_comma != -1 and 75 - last_comma <= backtrack:
                keep = last_comma + 1
                moved, movedw = cur[keep:], curw[keep:]
                cur, curw = cur[:keep], curw[:keep]
                flush()
                cur, curw = moved, movedw
            if len(cur) == 75:
                flush()
            cur.append(tok)
            curw.append(weight)
    if cur or not done:
        flush()
    return done


PHRASE7 = "a big red house on hill, "       # 7 tokens: a big red house on hill ,
PROMPTS = [
    ("plain", "a photo of a cat"),
    ("empty", ""),
    ("weights", "(masterpiece:1.3), best quality, [blurry], ((detailed)), (((sky))), [[dark]]"),
    ("doc_example", "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky)))."),
    ("unbalanced", "((a) b [c (d e] f) g ] h ) i"),
    ("open_end", "(a (b [c"),
    ("escapes", "\\(literal\\) \\[x\\] \\\\ back a\\b (y:0.5)"),
    ("numbers", "(a: 1.5 ) (b:-1) (c:+.5) (d:.5) (e:2.) [f:1.3) g:0.5) :h"),
    ("colon_text", "time: 12:30, ratio 16:9 (x:1.1)"),
    ("break_simple", "a cat BREAK a dog"),
    ("break_only", "BREAK"),
    ("break_edges", "BREAK a BREAK"),
    ("break_double", "a BREAK BREAK b"),
    ("break_words", "aBREAK b BREAKx BREAK_ c\nBREAK\nd break"),
    ("break_in_parens", "(red BREAK blue:1.2) green"),
    ("backtrack", PHRASE7 * 12),
    ("backtrack_weighted", "(" + PHRASE7 * 6 + ":1.2)" + PHRASE7 * 6),
    ("no_comma_nearby", "start, " + "word " * 90),
    ("exactly_75", "cat " * 75),
    ("exactly_76", "cat " * 76),
    ("comma_at_75", "cat " * 74 + ", dog"),
    ("long", LONG + ", " + LONG),
    ("very_long", ", ".join([LONG] * 4)),
    ("mixed_break_long", LONG + " BREAK (" + LONG + ":0.9)"),
]


def prompt_goldens(hf):
    tensors, meta = {}, []
    for i, (name, prompt) in enumerate(PROMPTS):
        for pz in (0, 1):
            ch = chunks(hf, prompt, pz)
            tensors[f"ids{pz}.{i}"] = torch.tensor([c[0] for c in ch], dtype=torch.int32)
            tensors[f"w{pz}.{i}"] = torch.tensor([c[1] for c in ch], dtype=torch.float32)
        meta.append({"name": name, "prompt": prompt})
        print(f"  {name}: {len(chunks(hf, prompt, 0))} window(s)")
    # facts.md §3.4 quotes this A1111 doc example; the model above must reproduce it exactly.
    got = [(t, w) for t, w, _ in parse("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).")]
    assert got == [("a ", 1.0), ("house", 1.5730000000000004), (" ", 1.1), ("on", 1.0), (" a ", 1.1),
                   ("hill", 0.55), (", sun, ", 1.1), ("sky", 1.4641000000000006), (".", 1.1)], got
    return tensors, meta


def emphasis_goldens():
    """A1111 "Original" emphasis on random hidden states, computed with torch float32 as A1111 does."""
    g = torch.Generator().manual_seed(3)
    out = {}
    for k, (tokens, c) in enumerate([(77, 16), (154, 24), (5, 3)]):
        z = torch.randn(tokens, c, generator=g) * 0.7 + 0.1
        w = 1.0 + 0.4 * torch.rand(tokens, generator=g)
        w[: tokens // 4] = 1.0
        m0 = z.mean()
        zz = z * w.reshape(-1, 1).expand(z.shape)
        zz = zz * (m0 / zz.mean())
        out[f"z.{k}"], out[f"w.{k}"], out[f"out.{k}"] = z, w, zz
        out[f"nonorm.{k}"] = z * w.reshape(-1, 1)
    return out


def nfc_goldens():
    """Random strings of letters, precomposed letters, combining marks (several classes) and Hangul jamo, with
    unicodedata NFC (the same as tokenizers' NFC on these) as the reference."""
    import unicodedata
    pool = ([ord(c) for c in "aeiouAEOUnsczqk"] + [0xE9, 0xC5, 0x1EA5, 0x1EC7, 0x1E69, 0x212B, 0x2126, 0x340, 0x344,
            0xF900, 0x1D15E] + list(range(0x300, 0x316)) + [0x323, 0x327, 0x328, 0x31B, 0x345, 0x5B0, 0x5BC, 0x94D,
            0x93C, 0x3099, 0x309A, 0x302A, 0x0E38] + [0x304B, 0x30AB, 0xFF76, 0x1100, 0x1112, 0x1161, 0x1173, 0x11AB,
            0x11AF, 0xAC00, 0xD55C, 0x0915, 0x0928])
    rng = random.Random(11)
    ins, outs = [], []
    for _ in range(400):
        s = "".join(chr(rng.choice(pool)) for _ in range(rng.randint(1, 8)))
        ins.append([ord(c) for c in s])
        n = unicodedata.normalize("NFC", s)
        assert tokenizers.normalizers.NFC().normalize_str(s) == n
        outs.append([ord(c) for c in n])
    flat = lambda xs: torch.tensor([len(x) for x in xs] + [c for x in xs for c in x], dtype=torch.int32)
    return {"in": flat(ins), "out": flat(outs)}


def main():
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        write_hf_files(d)
        hf = CLIPTokenizer.from_pretrained(d)
        bang = CLIPTokenizer.from_pretrained(d, pad_token="!")
    assert hf.pad_token_id == 49407 and bang.pad_token_id == 0
    # facts.md §3.1 vectors, as a check of the reference set-up itself
    assert hf("a photo of an astronaut riding a horse on mars")["input_ids"] == \
        [49406, 320, 1125, 539, 550, 18376, 6765, 320, 4558, 525, 7496, 49407]
    assert bang("! !! !!!", add_special_tokens=False)["input_ids"] == [0] * 6

    t, m = tokenizer_goldens(hf, bang)
    save_file(t, os.path.join(OUT, "cases.safetensors"), metadata={"cases": json.dumps(m), "versions": VERSIONS})

    t, m = prompt_goldens(hf)
    save_file(t, os.path.join(OUT, "prompts.safetensors"), metadata={"prompts": json.dumps(m), "versions": VERSIONS})

    save_file(nfc_goldens(), os.path.join(OUT, "nfc.safetensors"), metadata={"count": "400", "versions": VERSIONS})

    save_file(emphasis_goldens(), os.path.join(OUT, "emphasis.safetensors"), metadata={"versions": VERSIONS})

    # A small tokenizer folder with permuted ids, to test clip_tokenizer_load, and what HF makes of it.
    tiny = os.path.join(OUT, "tiny")
    write_hf_files(tiny, n_merges=600, shuffle_ids=True)
    tt = CLIPTokenizer.from_pretrained(tiny)
    texts = ["a photo of an astronaut riding a horse on mars", "the quick brown fox, 2024!", "Café 日本 🐱",
             "<|startoftext|>in the<|endoftext|>", "tokenizer"]
    ti = {f"ids.{i}": torch.tensor(tt(s, add_special_tokens=False)["input_ids"], dtype=torch.int32)
          for i, s in enumerate(texts)}
    save_file(ti, os.path.join(OUT, "tiny.safetensors"), metadata={"texts": json.dumps(texts), "versions": VERSIONS})
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
