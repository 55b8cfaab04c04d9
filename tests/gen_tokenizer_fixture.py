#!/usr/bin/env python3
"""Golden fixtures for libmiles' BERT WordPiece tokenizer (tests/test_tokenizer.c).

Reference: HF BertTokenizerFast (tokenizers 0.19.1, transformers 4.40.2) loaded
from models/all-MiniLM-L6-v2 (vocab = bert-base-uncased's).  Run with the
reference environment, from the repository root:

    /opt/miles-ref/bin/python tests/gen_tokenizer_fixture.py [--shared ../shared]

Writes (each < 2 MB, plain text, one case per line, fields separated by TAB,
texts as lowercase hex of their UTF-8 (or deliberately invalid) bytes):

  tests/fixtures/tokenizer_vocab.txt       copy of vocab.txt (the test needs no `make weights`)
  tests/fixtures/tokenizer_cases.txt       T <cfg> <source> <hex text> <ids>
        cfg: u = flags from the model directory (uncased: lowercase + strip accents)
             c = lowercase 0, strip_accents 0 (cased BERT)
             l = lowercase 1, strip_accents 0
             s = lowercase 0, strip_accents 1
  tests/fixtures/tokenizer_encode.txt      E <max_len> <pad 0/1> <hex a> <hex b or -> <ids> <type_ids> <mask>
                                           B <max_len> <pad 0/1> <hex t1,hex t2,...> <T> <ids> <type_ids> <mask>
  tests/fixtures/tokenizer_codepoints.txt  P <cfg> <first code point, hex> <FNV-1a 64 hex>: for every
        block of 256 code points, the hash of the ids of "a" + chr(c) + "b" for each
        non-surrogate c in the block (each id as 4 little-endian bytes, then 0xFFFFFFFF)
  tests/fixtures/tokenizer_slow_vs_fast.txt  where the slow BertTokenizer disagrees (documentation)

Invalid UTF-8: HF needs a str, so it gets bytes.decode('utf-8', 'replace'); the
U+FFFD it inserts are removed by BertNormalizer's cleaning, as ours are.
"""
import argparse, csv, os, random, shutil, struct, sys, tempfile, unicodedata

import tokenizers, transformers
from transformers import BertTokenizer, BertTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "models", "all-MiniLM-L6-v2")
FIX = os.path.join(ROOT, "tests", "fixtures")


def edge_cases():
    """>= 100 hand-made strings (bytes) aimed at every rule of the pipeline."""
    s = [
        "", " ", "     ", "\t\n\r ", "\u3000\u00a0\u2009", "🔥", "🔥🔥🔥", "😀😃😄😁",
        "a" * 100, "a" * 101, "b" * 99 + "é", "é" * 100 + "é", "x" * 250,
        "ab" * 60, "supercalifragilisticexpialidocious" * 3,
        "e\u0301", "E\u0301COLE", "Ame\u0301lie", "o\u0308\u0304", "a\u0334\u0301b",
        "\u1e9b\u0323", "q\u0307\u0323", "x\u0345\u0301",
        "👨\u200d👩\u200d👧\u200d👦", "🏳\ufe0f\u200d🌈", "👍🏽", "👋🏿 hi", "1️⃣ 2️⃣",
        "ＦＵＬＬ　ＷＩＤＴＨ　ｔｅｘｔ！", "ｈｅｌｌｏ，ｗｏｒｌｄ", "１２３",
        "tab\there", "new\nline", "cr\rlf\r\n", "bell\x07char", "nul\x00inside", "\x00", "esc\x1b[0m",
        "del\x7fete", "vt\x0bff\x0c", "nel\x85x", "ls\u2028ps\u2029", "soft\u00adhyphen",
        "zero\u200bwidth", "bom\ufeffmark", "rtl\u202emark", "replace\ufffdchar", "\ufffd\ufffd",
        "private\ue000use", "\U000f0000", "nonchar\uffff", "unassigned\u0378",
        "Hello, World!", "HELLO WORLD", "MiXeD CaSe", "naïve café résumé", "Crème Brûlée",
        "ÀÉÎÕÜ ÇÑ", "Ångström", "Øresund Æsir", "Łódź", "İstanbul", "ıi İI", "ǅungla ǈ ǋ",
        "Straße STRASSE ß ẞ", "ΣΊΣΥΦΟΣ σς ΟΔΟΣ", "Ω Ω Å K", "ﬁnance ﬂow ﬀ", "x² H₂O ½ ⅔ ①",
        "™ © ® ℃ ℉", "ℌ𝕳𝖊𝖑𝖑𝖔 𝓗𝓮𝓵𝓵𝓸",
        "don't", "I'm won't can't", "rock'n'roll", "“quoted” ‘single’ «guillemets» „low“",
        "em—dash en–dash", "ellipsis… ...", "a.b.c", "U.S.A.", "e-mail", "state-of-the-art",
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=42s", "user@example.com", "#fyp #viral #ForYou",
        "@someone_123 hi", "$1,000,000.00", "3.14159", "1,234,567", "10%", "50/50", "24/7", "#1",
        "C++ C# F#", "<html>&amp;</html>", "{json: [1, 2]}", "a_b_c", "~!@#$%^&*()_+`-={}|[]\\:\";'<>?,./",
        "中文分词测试", "我爱北京天安门", "日本語のテキスト、カタカナ", "ひらがな", "한국어 텍스트", "안녕하세요",
        "漢字かな交じり文", "繁體中文測試", "\U00020000\U0002a6d6", "\U0002b820\U0002b91f\U0002b920",
        "\uf900\uf9ff\ufa6e", "\u2f800", "\U0002f800", "\u3400\u4dbf", "\u9fff\u9fa5",
        "ภาษาไทย", "สวัสดีครับ", "Tiếng Việt có dấu", "Tie\u0302\u0301ng Vie\u0323\u0302t",
        "Привет, мир!", "ЁЛКА ёлка", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "ελληνικά",
        "Ελληνικά ΆΈΉ", "ქართული", "Հայերեն", "አማርኛ", "ᚠᛇᚻ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
        "mixed中文and English混合", "hello世界", "emoji🔥in🔥words", "123abc456", "abc123",
        "[CLS] [SEP] [PAD] [UNK] [MASK]", "hello [MASK] world", "hello [mask] world", "x[SEP]y",
        "[[MASK]]", "[MASK[MASK]", "[UNK]unknown", "a[PAD]b[CLS]c", "[MA SK]", "[SEP][SEP]",
        "unaffable", "unbelievable!!!", "##hash", "## ##", "#", "##", "###", "hash##tag",
        "\u0130", "\u0130\u0307", "I\u0307", "\u1e9e", "\u01c5", "\u1f88", "\u1fbc", "\u0345",
        "\u2126\u212a\u212b", "\u00b5\u03bc", "\u0149", "\u01f0", "\ufb00\ufb03", "\u1e96",
        "\u0587", "\u1f50\u1f52", "\u03d0\u03f5", "\u1e9b", "\u0390\u03b0",
        "\u037e\u1fef\u0387", "\u2000\u200a\u205f", "\u180e", "\u061c", "\u2066\u2069",
        "\u0e33 \u0eb3", "\uac00\ud7a3", "\u1100\u1161\u11a8", "\u3131\u314f",
        "\u0f73\u0f75\u0f81", "\u0344", "\u0958\u0959", "\u2adc", "\U0001d15e\U0001d160",
        "\U0001f1fa\U0001f1f8", "\U0001f3fb", "\u20e3", "\u0332\u0333", "a\u20dd", "\u0488\u0489",
        "\u166d\u1734\u1885\u1886\ua9bd\U000111c9", "\u061d\u07fd\u08d3", "\U0001e030\U0001e08f",
        "ab\u0300\u0301\u0302\u0303\u0304\u0305\u0306\u0307\u0308\u0309" * 5,
        " leading and trailing ", "multiple   spaces\t\ttabs", "\n\n\nnewlines\n\n",
        "ALL CAPS TITLE WITH NUMBERS 2017", "Title | Channel Name", "Part 1/3: The Beginning",
        "VS.", "ft.", "(Official Music Video)", "[Official Video]",
    ]
    out = [x.encode("utf-8") for x in s]
    # invalid UTF-8 (and a few valid neighbours): every kind of ill-formed subpart
    out += [
        b"\xff", b"\xfe\xff", b"abc\x80def", b"caf\xe9", b"\xc3", b"\xc3(", b"\xe2\x82", b"\xe2\x82(x",
        b"\xf0\x9f\x98", b"\xf0\x9f\x98x", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xc0\xaf", b"\xe0\x80\xaf",
        b"\xf0\x80\x80\xaf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xf8\x88\x80\x80\x80",
        b"\x80\x80\x80", b"ok \xe2\x82\xac euro", b"half\xe2\x82 euro", b"[MA\xffSK]", b"[MASK\xff]",
        b"\xef\xbf\xbd", b"a\xc2\xa0b", b"\xe4\xb8\xad\xe6\x96", b"x" * 99 + b"\xff" + b"y",
        b"\xc3\xa9\xcc", b"\xc1\xbf", b"\xe0\xa0", b"\xf0\x90\x80", b"\xf1", b"\xf4\x8f\xbf\xbf",
    ]
    return out


def read_col(path, col):
    csv.field_size_limit(1 << 30)
    with open(path, encoding="utf-8", newline="") as f:
        return [r[col] for r in csv.DictReader(f) if r.get(col)]


def sample_unique(vals, n, seed):
    seen, uniq = set(), []
    for v in vals:
        if v not in seen:
            seen.add(v)
            uniq.append(v)
    rng = random.Random(seed)
    return rng.sample(uniq, min(n, len(uniq)))


def hx(b):
    return b.hex()


def ids_str(ids):
    return " ".join(map(str, ids))


def fast_ids(tok, texts):
    enc = tok(texts, add_special_tokens=False, padding=False, truncation=False)
    return enc["input_ids"]


def fnv64(data, h=0xcbf29ce484222325):
    for b in data:
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.environ.get("MILES_SHARED", os.path.join(ROOT, "..", "shared")))
    ap.add_argument("--no-codepoints", action="store_true", help="skip the (slow) per-code-point sweep")
    args = ap.parse_args()
    assert tokenizers.__version__ == "0.19.1", tokenizers.__version__
    assert transformers.__version__ == "4.40.2", transformers.__version__
    os.makedirs(FIX, exist_ok=True)
    shutil.copyfile(os.path.join(MODEL, "vocab.txt"), os.path.join(FIX, "tokenizer_vocab.txt"))

    fast = BertTokenizerFast.from_pretrained(MODEL)
    slow = BertTokenizer.from_pretrained(MODEL)

    data = os.path.join(args.shared, "data")
    corpus = []  # (source, bytes)
    for v in sample_unique(read_col(os.path.join(data, "youtube_trending_2017_v1", "USvideos.csv"), "title"), 900, 1):
        corpus.append(("youtube", v.encode("utf-8")))
    for v in sample_unique(read_col(os.path.join(data, "tiktok_vn_ie403", "feed_scrape1_raw.csv"), "vid_caption"), 700, 2):
        corpus.append(("tiktok_vn", v.encode("utf-8")))
    for v in sample_unique(read_col(os.path.join(data, "tiktok_trending_dec2020", "trending_flat_DERIVED.csv"), "text"), 600, 3):
        corpus.append(("tiktok_trending", v.encode("utf-8")))
    edges = edge_cases()
    corpus += [("edge", b) for b in edges]
    texts = [b.decode("utf-8", "replace") for _, b in corpus]
    ids = fast_ids(fast, texts)

    # the same model loaded from a bare vocab.txt must agree (our file-path mode)
    with tempfile.TemporaryDirectory() as d:
        shutil.copyfile(os.path.join(MODEL, "vocab.txt"), os.path.join(d, "vocab.txt"))
        bare = BertTokenizerFast.from_pretrained(d)
        assert fast_ids(bare, texts) == ids, "vocab-only BertTokenizerFast disagrees with the model directory"
        variants = {
            "c": BertTokenizerFast(os.path.join(d, "vocab.txt"), do_lower_case=False, strip_accents=False),
            "l": BertTokenizerFast(os.path.join(d, "vocab.txt"), do_lower_case=True, strip_accents=False),
            "s": BertTokenizerFast(os.path.join(d, "vocab.txt"), do_lower_case=False, strip_accents=True),
        }
        sub_idx = [i for i, (src, _) in enumerate(corpus) if src == "edge"] + list(range(0, len(corpus) - len(edges), 7))
        lines = []
        for i, ((src, b), t) in enumerate(zip(corpus, ids)):
            lines.append("T\tu\t%s\t%s\t%s\n" % (src, hx(b), ids_str(t)))
        for cfg, tk in variants.items():
            vids = fast_ids(tk, [texts[i] for i in sub_idx])
            for i, t in zip(sub_idx, vids):
                lines.append("T\t%s\t%s\t%s\t%s\n" % (cfg, corpus[i][0], hx(corpus[i][1]), ids_str(t)))
        # miles_tokenizer_hash, computed independently: FNV-1a 64 over each vocab
        # token + "\n", then the flags string
        with open(os.path.join(MODEL, "vocab.txt"), "rb") as f:
            raw = f.read()
        toks = raw.split(b"\n")
        if toks and toks[-1] == b"":
            toks.pop()
        vbytes = b"".join((t[:-1] if t.endswith(b"\r") else t) + b"\n" for t in toks)
        for cfg, (lo, st) in {"u": (1, 1), "c": (0, 0), "l": (1, 0), "s": (0, 1)}.items():
            flags = "lowercase=%d strip_accents=%d chinese=1 clean=1 max_chars=100" % (lo, st)
            lines.append("H\t%s\t%016x\n" % (cfg, fnv64(vbytes + flags.encode())))
        with open(os.path.join(FIX, "tokenizer_cases.txt"), "w") as f:
            f.write("# generated by tests/gen_tokenizer_fixture.py: HF BertTokenizerFast (tokenizers %s, "
                    "transformers %s); see the script for the format\n" % (tokenizers.__version__, transformers.__version__))
            f.writelines(lines)
        print("cases: %d strings (%d edge), %d lines" % (len(corpus), len(edges), len(lines)), file=sys.stderr)

        # ---- encode: pairs, truncation, padding
        rng = random.Random(4)
        enc_lines = []
        pool = [i for i in range(len(corpus))]
        for k in range(300):
            ia, ib = rng.choice(pool), rng.choice(pool)
            a, b = texts[ia], texts[ib]
            pair = k % 3 != 0
            L = rng.choice([3, 4, 5, 7, 8, 12, 16, 24, 32, 64, 128])
            pad = rng.choice([0, 1])
            kw = dict(max_length=L, truncation=True, padding="max_length" if pad else False)
            e = fast(a, b, **kw) if pair else fast(a, **kw)
            n = len(e["input_ids"])
            # our arrays are always max_len long: HF's unpadded rows are completed with [PAD]/0/0
            full = lambda v, fill: v + [fill] * (L - n)
            enc_lines.append("E\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n" % (
                L, pad, hx(corpus[ia][1]), hx(corpus[ib][1]) if pair else "-",
                ids_str(full(e["input_ids"], fast.pad_token_id)), ids_str(full(e["token_type_ids"], 0)),
                ids_str(full(e["attention_mask"], 0))))
        for k in range(40):
            nb = rng.choice([1, 2, 3, 5, 8, 17])
            sel = [rng.choice(pool) for _ in range(nb)]
            L = rng.choice([2, 3, 8, 16, 32, 128])
            pad = k % 2
            e = fast([texts[i] for i in sel], max_length=L, truncation=True, padding="max_length" if pad else "longest")
            T = len(e["input_ids"][0])
            flat = lambda key: ids_str([x for row in e[key] for x in row])
            enc_lines.append("B\t%d\t%d\t%s\t%d\t%s\t%s\t%s\n" % (
                L, pad, ",".join(hx(corpus[i][1]) for i in sel), T, flat("input_ids"), flat("token_type_ids"),
                flat("attention_mask")))
        with open(os.path.join(FIX, "tokenizer_encode.txt"), "w") as f:
            f.write("# generated by tests/gen_tokenizer_fixture.py: HF tokenizer(a, b, max_length=L, truncation=True, "
                    "padding=...); see the script for the format\n")
            f.writelines(enc_lines)

        # ---- every code point in context: a<c>b, hashed per 256-block
        if not args.no_codepoints:
            cp_lines = []
            for cfg, tk in [("u", fast), ("c", variants["c"]), ("l", variants["l"])]:
                for blk in range(0, 0x110000, 256):
                    cps = [c for c in range(blk, blk + 256) if not 0xD800 <= c <= 0xDFFF]
                    if not cps:
                        continue
                    res = fast_ids(tk, ["a" + chr(c) + "b" for c in cps])
                    h = 0xcbf29ce484222325
                    for r in res:
                        h = fnv64(struct.pack("<%di" % len(r), *r) + b"\xff\xff\xff\xff", h)
                    cp_lines.append("P\t%s\t%x\t%016x\n" % (cfg, blk, h))
                print("codepoints: cfg %s done" % cfg, file=sys.stderr)
            with open(os.path.join(FIX, "tokenizer_codepoints.txt"), "w") as f:
                f.write("# generated by tests/gen_tokenizer_fixture.py: per 256-code-point block, FNV-1a 64 of the "
                        "HF fast ids of 'a'+chr(c)+'b'\n")
                f.writelines(cp_lines)

    # ---- where the slow (Python) BertTokenizer disagrees with the fast one
    diff_lines = []
    sids = [slow(t, add_special_tokens=False)["input_ids"] for t in texts]
    for (src, b), t, f_ids, s_ids in zip(corpus, texts, ids, sids):
        if f_ids != s_ids:
            diff_lines.append("%s\t%r\tfast=%s\tslow=%s\n" % (src, t, fast.convert_ids_to_tokens(f_ids),
                                                          slow.convert_ids_to_tokens(s_ids)))
    if not args.no_codepoints:
        # every code point in context, summarized per kind of disagreement:
        # (general category in Python's unicodedata, what fast does, what slow does)
        def shape(toks):
            if toks == ["a", "##b"] or toks == ["ab"]:
                return "removed"
            if toks == ["a", "b"]:
                return "space"
            if len(toks) == 3 and toks[0] == "a" and toks[2] == "b":
                return "isolated:" + ("[UNK]" if toks[1] == "[UNK]" else "token")
            if toks == ["[UNK]"]:
                return "word->[UNK]"
            return "word:" + " ".join(toks)
        cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
        fx = fast_ids(fast, ["a" + chr(c) + "b" for c in cps])
        buckets, n_cp = {}, 0
        for c, fi in zip(cps, fx):
            x = "a" + chr(c) + "b"
            si = slow(x, add_special_tokens=False)["input_ids"]
            if fi == si:
                continue
            n_cp += 1
            fs, ss = shape(fast.convert_ids_to_tokens(fi)), shape(slow.convert_ids_to_tokens(si))
            key = (unicodedata.category(chr(c)), fs if not fs.startswith("word:") else "word",
                   ss if not ss.startswith("word:") else "word")
            b = buckets.setdefault(key, [0, []])
            b[0] += 1
            if len(b[1]) < 4:
                try:
                    name = unicodedata.name(chr(c))
                except ValueError:
                    name = "unassigned"
                b[1].append("U+%04X %s: fast %s, slow %s" % (c, name, fs, ss))
        diff_lines.append("# code points (in 'a'+c+'b'), Python unicodedata %s categories: %d differ\n" % (
            unicodedata.unidata_version, n_cp))
        for key, (cnt, ex) in sorted(buckets.items(), key=lambda kv: -kv[1][0]):
            diff_lines.append("codepoints\tcategory %s: fast %s / slow %s\t%d code points\te.g. %s\n" % (
                key[0], key[1], key[2], cnt, "; ".join(ex)))
        print("slow vs fast: %d code points differ in %d kinds" % (n_cp, len(buckets)), file=sys.stderr)
    with open(os.path.join(FIX, "tokenizer_slow_vs_fast.txt"), "w") as f:
        f.write("# generated by tests/gen_tokenizer_fixture.py: slow BertTokenizer vs BertTokenizerFast disagreements\n")
        f.writelines(diff_lines)
    print("slow vs fast: %d lines" % len(diff_lines), file=sys.stderr)


if __name__ == "__main__":
    main()
