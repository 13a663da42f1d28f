#!/usr/bin/env python3
"""Write a bf16 GGUF (llama.cpp's "qwen3" architecture) from a Qwen3 safetensors checkpoint.

Used by tools/compare_llama_cpp.sh so that llama.cpp runs the very checkpoint rosa-serve runs,
without torch or transformers (llama.cpp's convert_hf_to_gguf.py needs both). Needs numpy and the
`gguf` package from llama.cpp's gguf-py (put .../llama.cpp/gguf-py on PYTHONPATH).

Names and keys follow the vendored convert_hf_to_gguf.py (conversion/qwen.py Qwen3Model,
conversion/base.py TextModel.set_gguf_parameters and _set_vocab_gpt2): 2-D weights stay bf16 as
stored, 1-D norm weights become f32 (as the converter does), tied embeddings get no output.weight.
The tokenizer section comes from a HF tokenizer.json (gpt2 / pre "qwen2"), padded with unused
tokens up to the checkpoint's vocab_size.

usage: qwen3_to_gguf.py MODEL_DIR TOKENIZER_DIR OUT.gguf
"""
import json
import os
import struct
import sys

import numpy as np
import gguf


def read_safetensors(path):
    """Yields (name, dtype string, shape, numpy array over the raw bytes) without copying much."""
    with open(path, "rb") as f:
        (hlen,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(hlen))
    base = 8 + hlen
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        yield name, info["dtype"], info["shape"], mm[base + a: base + b]


def gguf_name(hf_name, n_layers):
    m = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    if hf_name in m:
        return m[hf_name]
    per_layer = {
        "input_layernorm.weight": "attn_norm.weight",
        "post_attention_layernorm.weight": "ffn_norm.weight",
        "self_attn.q_proj.weight": "attn_q.weight",
        "self_attn.k_proj.weight": "attn_k.weight",
        "self_attn.v_proj.weight": "attn_v.weight",
        "self_attn.o_proj.weight": "attn_output.weight",
        "self_attn.q_norm.weight": "attn_q_norm.weight",
        "self_attn.k_norm.weight": "attn_k_norm.weight",
        "mlp.gate_proj.weight": "ffn_gate.weight",
        "mlp.up_proj.weight": "ffn_up.weight",
        "mlp.down_proj.weight": "ffn_down.weight",
    }
    parts = hf_name.split(".")
    if len(parts) > 3 and parts[0] == "model" and parts[1] == "layers":
        bid = int(parts[2])
        rest = ".".join(parts[3:])
        if rest in per_layer and 0 <= bid < n_layers:
            return f"blk.{bid}.{per_layer[rest]}"
    raise SystemExit(f"qwen3_to_gguf: no llama.cpp name for tensor {hf_name}")


def check_names_known(names):
    """Every name must be one llama.cpp's QWEN3 architecture declares (constants.py)."""
    known = set()
    for t in gguf.MODEL_TENSORS[gguf.MODEL_ARCH.QWEN3]:
        base = gguf.TENSOR_NAMES[t]
        known.add(base + ".weight")
    for n in names:
        generic = n
        if n.startswith("blk."):
            p = n.split(".")
            generic = "blk.{bid}." + ".".join(p[2:])
        if generic not in known:
            raise SystemExit(f"qwen3_to_gguf: {n} is not a QWEN3 tensor in this gguf-py")


def add_vocab(w, tok_dir, n_vocab):
    with open(os.path.join(tok_dir, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    model = tj["model"]
    if model.get("type") != "BPE":
        raise SystemExit("qwen3_to_gguf: tokenizer.json is not a BPE tokenizer")
    rev = {i: t for t, i in model["vocab"].items()}
    added = {a["id"]: a for a in tj.get("added_tokens", [])}
    top = max(list(rev) + list(added))
    if top >= n_vocab:
        raise SystemExit(f"qwen3_to_gguf: tokenizer id {top} >= vocab_size {n_vocab}")
    tokens, types = [], []
    for i in range(n_vocab):
        if i in added:
            a = added[i]
            tokens.append(a["content"])
            types.append(gguf.TokenType.CONTROL if a.get("special") else gguf.TokenType.USER_DEFINED)
        elif i in rev:
            tokens.append(rev[i])
            types.append(gguf.TokenType.NORMAL)
        else:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    # merges and bos/eos/pad ids, read from tokenizer.json / tokenizer_config.json by gguf-py
    sv = gguf.SpecialVocab(tok_dir, load_merges=True, n_vocab=n_vocab)
    if not sv.merges:
        raise SystemExit("qwen3_to_gguf: no merges found in tokenizer.json")
    sv.add_to_gguf(w)
    return sum(1 for t in types if t == gguf.TokenType.UNUSED)


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    model_dir, tok_dir, out = sys.argv[1:]
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    if cfg.get("model_type") != "qwen3":
        raise SystemExit(f"qwen3_to_gguf: model_type {cfg.get('model_type')!r} is not qwen3")
    n_layers = cfg["num_hidden_layers"]
    n_vocab = cfg["vocab_size"]
    head_dim = cfg.get("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"])

    st_files = sorted(p for p in os.listdir(model_dir)
                      if p.endswith(".safetensors") and p.startswith("model"))
    if not st_files:
        raise SystemExit(f"qwen3_to_gguf: no model*.safetensors in {model_dir}")

    arch = gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.QWEN3]
    w = gguf.GGUFWriter(out, arch)
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(os.path.basename(os.path.normpath(model_dir)))
    w.add_block_count(n_layers)
    w.add_context_length(cfg.get("max_position_embeddings", 40960))
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg.get("num_key_value_heads", cfg["num_attention_heads"]))
    w.add_rope_freq_base(float(cfg.get("rope_theta", 1000000.0)))
    w.add_layer_norm_rms_eps(float(cfg.get("rms_norm_eps", 1e-6)))
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_BF16)
    w.add_vocab_size(n_vocab)
    n_pad = add_vocab(w, tok_dir, n_vocab)

    names = []
    seen = set()
    for fn in st_files:
        for hf, dt, shape, raw in read_safetensors(os.path.join(model_dir, fn)):
            name = gguf_name(hf, n_layers)
            if name == "output.weight" and cfg.get("tie_word_embeddings", False):
                continue
            if dt == "BF16":
                u16 = raw.view(np.uint16).reshape(shape)
                if len(shape) == 1:   # norms: f32 like convert_hf_to_gguf.py
                    arr = (u16.astype(np.uint32) << 16).view(np.float32)
                    w.add_tensor(name, arr)
                else:
                    w.add_tensor(name, u16, raw_dtype=gguf.GGMLQuantizationType.BF16)
            elif dt == "F32":
                w.add_tensor(name, raw.view(np.float32).reshape(shape))
            elif dt == "F16":
                w.add_tensor(name, raw.view(np.float16).reshape(shape))
            else:
                raise SystemExit(f"qwen3_to_gguf: {hf} has dtype {dt}")
            names.append(name)
            seen.add(name)
    check_names_known(names)
    expected = 2 + 11 * n_layers + (0 if cfg.get("tie_word_embeddings", False) else 1)
    if len(names) != expected:
        raise SystemExit(f"qwen3_to_gguf: {len(names)} tensors, expected {expected}")

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file(progress=False)
    w.close()
    print(f"qwen3_to_gguf: wrote {out}: {len(names)} tensors, vocab {n_vocab} "
          f"({n_pad} padding tokens), {n_layers} layers")


if __name__ == "__main__":
    main()
