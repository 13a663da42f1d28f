#!/usr/bin/env python3
"""make_parity_fixtures.py: small random Qwen3 checkpoints built and saved by transformers itself,
with transformers' own float32 logits and greedy continuations, for tests/test_parity.c.

Each case is a model made with Qwen3Config + Qwen3ForCausalLM (random weights, larger than the
default init so that logits are far apart), saved with save_pretrained in f32, bf16 or f16, in
one of the two config.json layouts a checkpoint comes in:

  * "p5": what transformers >= 5 writes (rope_parameters, layer_types), untouched;
  * "legacy": the older layout, rewritten from it: top-level rope_theta, rope_scaling (null or
    {"type": ...}), no layer_types (the layout comes from use_sliding_window + max_window_layers),
    torch_dtype.

Layer types are always written by transformers 5; a case that names them sets use_sliding_window
(Qwen3Config drops sliding_window without it).  The reference is computed by loading the saved directory back with from_pretrained (float32, eager
attention), so what is checked is the checkpoint as transformers reads it.  A case may have more
than one run: the same weights under the engine's run options (--window, --global-layers), whose
reference is transformers on the equivalent config (ROSA-SPEC section 1).

Written per case, under tests/data/parity/<case>/: config.json, model.safetensors, case.json
(prompt, runs: options, greedy ids, logits file; transformers' inv_freq and attention scaling),
and logits*.f32 (float32 little-endian [T, V]).  Needs torch and transformers (pip install torch
transformers); CI only reads the committed output.

Usage: tools/make_parity_fixtures.py [--only NAME,NAME] [outdir]   (default: tests/data/parity beside this
script; --only writes just those cases and leaves the others' committed files as they are)
PARITY_DEBUG=1 prints the greedy margin of every seed tried.
"""
import json
import os
import shutil
import sys
import tempfile

import torch
import transformers
from transformers import Qwen3Config, Qwen3ForCausalLM

V = 160
GREEDY = 12
MIN_MARGIN = 0.01  # top-1 minus top-2 logit at every greedy step, so float noise cannot flip it

BASE = dict(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-6, max_position_embeddings=4096,
            tie_word_embeddings=False)

# name, config changes, dtype, layout, prompt length, runs (extra: option -> config changes)
CASES = [
    ("full-tied-f32-p5", dict(tie_word_embeddings=True, rope_parameters={"rope_type": "default", "rope_theta": 1e6}),
     "float32", "p5", 64, []),
    ("full-untied-gqa4-bf16-p5", dict(num_attention_heads=8, num_key_value_heads=2, head_dim=8,
                                      rope_parameters={"rope_type": "default", "rope_theta": 1e6}),
     "bfloat16", "p5", 64, []),
    ("full-mha-f16-legacy", dict(num_key_value_heads=4, rope_parameters={"rope_type": "default", "rope_theta": 5e5}),
     "float16", "legacy", 64, []),
    ("swa-maxwindow-legacy", dict(use_sliding_window=True, max_window_layers=1, sliding_window=6,
                                  rope_parameters={"rope_type": "default", "rope_theta": 1e4}),
     "float32", "legacy", 48,
     [({"window": 3}, dict(sliding_window=3)),
      ({"global_layers": 2}, dict(max_window_layers=2))]),
    ("swa-layertypes-bf16-p5", dict(num_hidden_layers=4, use_sliding_window=True, sliding_window=5,
                                    layer_types=["sliding_attention", "full_attention", "sliding_attention",
                                                 "full_attention"],
                                    rope_parameters={"rope_type": "default", "rope_theta": 1e6}),
     "bfloat16", "p5", 48,
     [({"window": 2}, dict(sliding_window=2)),
      ({"window": 1}, dict(sliding_window=1)),
      ({"global_layers": 1, "window": 4},
       dict(sliding_window=4, layer_types=["full_attention"] + ["sliding_attention"] * 3))]),
    ("linear-f32-p5", dict(rope_parameters={"rope_type": "linear", "factor": 4.0, "rope_theta": 1e4}),
     "float32", "p5", 96, []),
    ("linear-bf16-legacy", dict(rope_parameters={"rope_type": "linear", "factor": 2.5, "rope_theta": 2e4}),
     "bfloat16", "legacy", 96, []),
    ("yarn-f32-p5", dict(head_dim=32, max_position_embeddings=256,
                         rope_parameters={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64,
                                          "rope_theta": 1e4}),
     "float32", "p5", 160, []),
    ("yarn-f16-legacy", dict(head_dim=32, max_position_embeddings=144,
                             rope_parameters={"rope_type": "yarn", "factor": 3.0,
                                              "original_max_position_embeddings": 48, "beta_fast": 16,
                                              "beta_slow": 2, "truncate": False, "rope_theta": 1e4}),
     "float16", "legacy", 128, []),
    ("yarn-mscale-bf16-p5", dict(head_dim=32, max_position_embeddings=320,
                                 rope_parameters={"rope_type": "yarn", "factor": 8.0,
                                                  "original_max_position_embeddings": 40, "mscale": 0.9,
                                                  "mscale_all_dim": 0.6, "rope_theta": 5e4}),
     "bfloat16", "p5", 120, []),
    ("yarn-swa-f32-p5", dict(head_dim=32, max_position_embeddings=96, use_sliding_window=True, sliding_window=9,
                             layer_types=["full_attention", "sliding_attention", "sliding_attention"],
                             rope_parameters={"rope_type": "yarn", "factor": 3.0, "original_max_position_embeddings": 32,
                                              "attention_factor": 1.25, "rope_theta": 1e6}),
     "float32", "p5", 80, []),
    # head sizes the AVX-512 attention kernel takes (multiples of 64), prompts longer than a prefill
    # chunk (256) and windows that start inside the 128-key blocks: prefill tiles of several rows
    ("swa-d128-gqa-f32-p5", dict(head_dim=128, use_sliding_window=True, sliding_window=37,
                                 layer_types=["full_attention", "sliding_attention", "sliding_attention"],
                                 rope_parameters={"rope_type": "default", "rope_theta": 1e6}),
     "float32", "p5", 300,
     [({"window": 20}, dict(sliding_window=20))]),
    ("swa-d64-mha-bf16-p5", dict(num_key_value_heads=4, head_dim=64, use_sliding_window=True, sliding_window=29,
                                 layer_types=["sliding_attention", "full_attention", "sliding_attention"],
                                 rope_parameters={"rope_type": "default", "rope_theta": 1e4}),
     "bfloat16", "p5", 270, []),
]


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:  # norm weights: around 1
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            elif "lm_head" in name:  # logits a few units apart, like the tied embedding gives
                p.copy_(4.0 * torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5)


def to_legacy(cfg):
    """The transformers < 5 spelling of a config.json written by transformers 5."""
    rp = cfg.pop("rope_parameters")
    cfg["rope_theta"] = rp.pop("rope_theta")
    kind = rp.pop("rope_type")
    cfg["rope_scaling"] = None if kind == "default" else dict(type=kind, **rp)
    cfg.pop("layer_types", None)
    cfg["torch_dtype"] = cfg.pop("dtype", "float32")
    return cfg


def load_ref(d):
    m = Qwen3ForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
    return m.eval()


def greedy(model, prompt, n):
    ids, out, margin = list(prompt), [], float("inf")
    with torch.no_grad():
        for _ in range(n):
            logits = model(torch.tensor([ids])).logits[0, -1]
            top = torch.topk(logits, 2).values
            margin = min(margin, float(top[0] - top[1]))
            t = int(torch.argmax(logits))
            out.append(t)
            ids.append(t)
    return out, margin


def run_reference(d, prompt):
    model = load_ref(d)
    with torch.no_grad():
        logits = model(torch.tensor([prompt])).logits[0].float().contiguous()
    ids, margin = greedy(model, prompt, GREEDY)
    rot = model.model.rotary_emb
    return model, logits, ids, margin, rot


def make_case(out, name, changes, dtype, layout, T, runs):
    for seed in range(20):
        d = os.path.join(out, name)
        shutil.rmtree(d, ignore_errors=True)
        torch.manual_seed(seed)
        cfg = Qwen3Config(**{**BASE, **changes})
        model = Qwen3ForCausalLM(cfg)
        randomize(model, seed)
        model.to(getattr(torch, dtype)).save_pretrained(d)
        for extra in ("generation_config.json",):
            if os.path.exists(os.path.join(d, extra)):
                os.remove(os.path.join(d, extra))
        cpath = os.path.join(d, "config.json")
        saved = json.load(open(cpath))
        if layout == "legacy":
            saved = to_legacy(saved)
            json.dump(saved, open(cpath, "w"), indent=2)
        g = torch.Generator().manual_seed(1000 + seed)
        prompt = torch.randint(0, V, (T,), generator=g).tolist()
        model, logits, ids, margin, rot = run_reference(d, prompt)
        case = {"transformers": transformers.__version__, "torch": torch.__version__, "dtype": dtype,
                "layout": layout, "prompt": prompt, "logits_shape": [T, V],
                "inv_freq": [float(x) for x in rot.inv_freq], "attention_scaling": float(rot.attention_scaling),
                "runs": [{"options": {}, "logits": "logits.f32", "greedy": ids, "min_greedy_margin": margin}]}
        logits.numpy().astype("<f4").tofile(os.path.join(d, "logits.f32"))
        ok = margin >= MIN_MARGIN
        if os.environ.get("PARITY_DEBUG"): print(name, seed, margin)
        for k, (opts, cfg_changes) in enumerate(runs):
            if not ok:
                break
            # the same weights under transformers with the config the options stand for
            with tempfile.TemporaryDirectory() as tmp:
                for f in ("model.safetensors",):
                    shutil.copy(os.path.join(d, f), tmp)
                c2 = dict(json.load(open(cpath)))
                c2.update(cfg_changes)
                if "max_window_layers" in cfg_changes:
                    c2.pop("layer_types", None)
                json.dump(c2, open(os.path.join(tmp, "config.json"), "w"))
                _, lg, gids, gm, _ = run_reference(tmp, prompt)
            fn = "logits-%d.f32" % (k + 1)
            lg.numpy().astype("<f4").tofile(os.path.join(d, fn))
            case["runs"].append({"options": opts, "logits": fn, "greedy": gids, "min_greedy_margin": gm})
            ok = gm >= MIN_MARGIN
            if os.environ.get("PARITY_DEBUG"): print(name, seed, opts, gm)
        if ok:
            json.dump(case, open(os.path.join(d, "case.json"), "w"))
            return case
    raise SystemExit("%s: no seed gave a greedy margin >= %g" % (name, MIN_MARGIN))


def main():
    args = sys.argv[1:]
    only = None
    if len(args) >= 2 and args[0] == "--only":
        only = set(args[1].split(","))
        args = args[2:]
    out = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data",
                                             "parity")
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    names = []
    for name, changes, dtype, layout, T, runs in CASES:
        names.append(name)
        if only is not None and name not in only:
            continue
        case = make_case(out, name, changes, dtype, layout, T, runs)
        print("%-26s %-8s %-6s T=%-3d runs=%d attention_scaling=%.6g margin=%.3g" % (
            name, dtype, layout, T, len(case["runs"]), case["attention_scaling"],
            min(r["min_greedy_margin"] for r in case["runs"])))
    json.dump({"cases": names}, open(os.path.join(out, "cases.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
