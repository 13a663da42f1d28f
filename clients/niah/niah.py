#!/usr/bin/env python3
"""niah.py: needle-in-a-haystack over the HTTP API of rosa-server (or any OpenAI-compatible
/v1/completions server).  Standard library only.

  niah.py run  --url URL [--lengths 1k,2k,...] [--depths 0,25,50,75,100] [--trials N]
               [--out results.json] [--label NAME] [--api-key KEY]
  niah.py plot results.json heatmap.png [--title TEXT]
  niah.py table [--summary] results.json [more.json ...]   markdown recall table(s)

A haystack of filler sentences (seeded, no digits) of the requested length in tokens holds
the needle "The passkey is NNNNN." at the requested depth (0% = start, 100% = just before the
question); the prompt ends "What is the passkey? The passkey is" and the answer is scored
correct when the first digits generated (greedy, 8 tokens) are the key.  Lengths count prompt
tokens: measured with /tokenize when the server has a tokenizer; on a byte-level model without
one (vocab 256, the built-in demo) prompts are sent as byte ids.  Keys have no doubled digits
by default (--doubled-digits allows them): the demo's hand-wired copy model collapses repeated
symbols, see ../shared/docs/COPY-DEMO.md."""
import argparse
import json
import os
import random
import re
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from png import Canvas  # noqa: E402

WORDS = ("the river runs past old stone walls while quiet birds watch from tall grass and "
         "farmers carry bread to market under a pale sky where clouds drift slowly over hills "
         "of green and brown fields that stretch toward distant towns with narrow streets "
         "full of small shops selling cloth and tools and warm soup").split()
QUESTION = "\nWhat is the passkey? The passkey is"


def parse_len(s):
    s = s.strip().lower()
    return int(float(s[:-1]) * 1024) if s.endswith("k") else int(s)


def fmt_len(n):
    return f"{n // 1024}k" if n % 1024 == 0 else str(n)


class Api:
    def __init__(self, url, api_key=None, timeout=3600):
        self.url, self.timeout = url.rstrip("/"), timeout
        self.headers = {"Content-Type": "application/json"}
        if api_key:
            self.headers["Authorization"] = "Bearer " + api_key

    def call(self, path, body=None):
        req = urllib.request.Request(self.url + path, headers=self.headers,
                                     data=json.dumps(body).encode() if body is not None else None)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{path}: HTTP {e.code}: {e.read()[:300]!r}") from None


class Encoder:
    """Text -> prompt, and the token count of a text, for the server at hand."""

    def __init__(self, api):
        self.api = api
        m = api.call("/v1/models")["data"][0]
        self.model = m["id"]
        self.tokenizer = m.get("tokenizer") is True
        if not self.tokenizer and m.get("vocab_size") != 256:
            raise SystemExit("niah: the server has no tokenizer and is not byte-level")
        self.ratio = 1.0  # tokens per character, for a first guess at lengths
        if self.tokenizer:
            sample = filler(random.Random(0), 4000)
            self.ratio = self.count(sample) / len(sample)

    def count(self, text):
        if not self.tokenizer:
            return len(text.encode())
        return self.api.call("/tokenize", {"prompt": text, "add_special_tokens": False})["count"]

    def prompt(self, text):
        return text if self.tokenizer else list(text.encode())


def filler(rng, nchars):
    out, n = [], 0
    while n < nchars:
        k = rng.randint(6, 14)
        s = " ".join(rng.choice(WORDS) for _ in range(k)).capitalize() + ". "
        out.append(s)
        n += len(s)
    return "".join(out)[:nchars]


def make_key(rng, doubled):
    while True:
        key = "".join(rng.choice("0123456789") for _ in range(5))
        if doubled or all(a != b for a, b in zip(key, key[1:])):
            return key


def build(enc, rng, length, depth, key):
    """A prompt of about `length` tokens with the needle at `depth` percent."""
    needle = f" The passkey is {key}. "
    fixed = enc.count(needle + QUESTION) if enc.tokenizer else len((needle + QUESTION).encode())
    budget = max(0, length - fixed)
    nchars = int(budget / enc.ratio)
    hay = filler(rng, nchars)
    if enc.tokenizer:  # one correction step on the measured count
        n = enc.count(hay)
        if n:
            hay = filler(random.Random(rng.random()), int(nchars * budget / n))
    cut = int(len(hay) * depth / 100)
    cut = hay.rfind(". ", 0, cut) + 2 if cut < len(hay) and hay.rfind(". ", 0, cut) >= 0 else cut
    return hay[:cut] + needle + hay[cut:] + QUESTION


def answer_digits(text):
    m = re.search(r"\d+", text)
    return m.group(0) if m else ""


def cmd_run(a):
    api = Api(a.url, a.api_key or os.environ.get("ROSA_API_KEY"))
    enc = Encoder(api)
    lengths = [parse_len(x) for x in a.lengths.split(",")]
    depths = [float(x) for x in a.depths.split(",")]
    rng = random.Random(a.seed)
    cells, t_start = [], time.time()
    for length in lengths:
        for depth in depths:
            ok, toks, secs = 0, 0, 0.0
            for _ in range(a.trials):
                key = make_key(rng, a.doubled_digits)
                text = build(enc, rng, length, depth, key)
                body = {"prompt": enc.prompt(text), "max_tokens": 8, "temperature": 0}
                if not enc.tokenizer:
                    body["return_token_ids"] = True
                t0 = time.time()
                r = api.call("/v1/completions", body)
                secs += time.time() - t0
                c = r["choices"][0]
                out = c["text"] if enc.tokenizer else bytes(c["token_ids"]).decode("latin-1")
                toks += r["usage"]["prompt_tokens"]
                hit = answer_digits(out)[:5] == key
                ok += hit
                if a.verbose:
                    print(f"  len {length} depth {depth:g}% key {key} -> {out!r} {'ok' if hit else 'MISS'}",
                          file=sys.stderr)
            cells.append({"length": length, "depth": depth, "trials": a.trials, "correct": ok,
                          "recall": ok / a.trials, "prompt_tokens": toks // a.trials,
                          "seconds": secs / a.trials})
            print(f"{a.label}: length {fmt_len(length):>5} depth {depth:5.1f}%  recall "
                  f"{ok}/{a.trials}  ({toks // a.trials} tokens, {secs / a.trials:.2f} s)", flush=True)
    res = {"label": a.label, "model": enc.model, "url": a.url, "lengths": lengths,
           "depths": depths, "trials": a.trials, "seed": a.seed, "cells": cells,
           "mean_recall": sum(c["recall"] for c in cells) / len(cells),
           "seconds": time.time() - t_start}
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)
    print(f"{a.label}: mean recall {100 * res['mean_recall']:.1f}% over {len(cells)} cells")
    return 0


def grid(res):
    g = {(c["length"], c["depth"]): c["recall"] for c in res["cells"]}
    return res["lengths"], res["depths"], g


def color(v):
    """red (0) -> yellow (0.5) -> green (1)"""
    if v < 0.5:
        return (220, int(60 + 330 * v), 60)
    return (int(220 - 340 * (v - 0.5)), 200, 60 + int(40 * (v - 0.5)))


def cmd_plot(a):
    res = json.load(open(a.results))
    lengths, depths, g = grid(res)
    cw, ch, left, top, s = 56, 26, 70, 44, 2
    w, h = left + cw * len(lengths) + 20, top + ch * len(depths) + 50
    cv = Canvas(w, h)
    title = a.title or f"{res['model']} {res['label']}: {100 * res['mean_recall']:.0f}%"
    cv.text(10, 10, title[: (w - 20) // 12], scale=s)
    for i, d in enumerate(depths):
        y = top + i * ch
        lab = f"{d:g}%"
        cv.text(left - 8 - cv.text_width(lab, s), y + (ch - 14) // 2, lab, scale=s)
        for j, n in enumerate(lengths):
            v = g.get((n, d))
            x = left + j * cw
            cv.rect(x, y, cw - 2, ch - 2, color(v) if v is not None else (200, 200, 200))
            if v is not None:
                t = f"{100 * v:.0f}"
                cv.text(x + (cw - 2 - cv.text_width(t, 1)) // 2, y + (ch - 9) // 2, t,
                        (0, 0, 0), 1)
    for j, n in enumerate(lengths):
        lab = fmt_len(n)
        cv.text(left + j * cw + (cw - 2 - cv.text_width(lab, s)) // 2, top + ch * len(depths) + 6,
                lab, scale=s)
    foot = "X: CONTEXT LENGTH (TOKENS)   Y: NEEDLE DEPTH"
    cv.text(left, h - 18, foot[: (w - left) // 6], scale=1)
    with open(a.png, "wb") as f:
        f.write(cv.png())
    return 0


def cmd_table(a):
    if a.summary:  # one row per run: recall per length, averaged over depths and trials
        runs = [json.load(open(p)) for p in a.results]
        lengths = sorted({n for r in runs for n in r["lengths"]})
        print("| recall % (mean over depths) | " + " | ".join(fmt_len(n) for n in lengths) +
              " | all |")
        print("| --- |" + " ---: |" * (len(lengths) + 1))
        for r in runs:
            cells = [[c["recall"] for c in r["cells"] if c["length"] == n] for n in lengths]
            print(f"| {r['label']} | " + " | ".join(
                f"{100 * sum(v) / len(v):.0f}" if v else "" for v in cells) +
                f" | {100 * r['mean_recall']:.1f} |")
        return 0
    for path in a.results:
        res = json.load(open(path))
        lengths, depths, g = grid(res)
        print(f"**{res['label']}** ({res['model']}, {res['trials']} trial(s) per cell, mean "
              f"recall {100 * res['mean_recall']:.1f}%)\n")
        print("| depth \\ length | " + " | ".join(fmt_len(n) for n in lengths) + " |")
        print("| --- |" + " ---: |" * len(lengths))
        for d in depths:
            print(f"| {d:g}% | " + " | ".join(
                f"{100 * g[(n, d)]:.0f}" if (n, d) in g else "" for n in lengths) + " |")
        print()
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--url", default="http://127.0.0.1:8080")
    r.add_argument("--api-key")
    r.add_argument("--lengths", default="1k,2k,4k,8k,16k,32k,64k,128k")
    r.add_argument("--depths", default="0,25,50,75,100")
    r.add_argument("--trials", type=int, default=1)
    r.add_argument("--seed", type=int, default=1234)
    r.add_argument("--label", default="run")
    r.add_argument("--out")
    r.add_argument("--doubled-digits", action="store_true")
    r.add_argument("--verbose", action="store_true")
    pl = sub.add_parser("plot")
    pl.add_argument("results")
    pl.add_argument("png")
    pl.add_argument("--title")
    t = sub.add_parser("table")
    t.add_argument("results", nargs="+")
    t.add_argument("--summary", action="store_true", help="one row per run, by length")
    a = p.parse_args(argv)
    return {"run": cmd_run, "plot": cmd_plot, "table": cmd_table}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
