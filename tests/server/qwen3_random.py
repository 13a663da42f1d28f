"""qwen3_random.py: write a tiny random Qwen3 checkpoint whose vocabulary is the real Qwen3
tokenizer's (151,669 ids), so the server's text paths can run with that tokenizer: by default
hidden 16, one layer, f16 (about 5 MB); larger shapes and ROSA weights (rosa_layers: the layers
that carry them, stored in model.safetensors) on request, for the session tests and
tools/bench_chat_turns.py.  Deterministic (seeded).  Needs numpy and safetensors."""
import json
import os

import numpy as np
from safetensors.numpy import save_file

VOCAB = 151669


def write(d, vocab=VOCAB, seed=0, hidden=16, layers=1, heads=2, kv_heads=1, head_dim=8, ffn=32,
          rosa_layers=()):
    os.makedirs(d, exist_ok=True)
    cfg = {
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "vocab_size": vocab,
        "hidden_size": hidden, "intermediate_size": ffn, "num_hidden_layers": layers,
        "num_attention_heads": heads, "num_key_value_heads": kv_heads, "head_dim": head_dim,
        "hidden_act": "silu", "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
        "rope_scaling": None, "tie_word_embeddings": True, "max_position_embeddings": 40960,
        "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 151643,
        "eos_token_id": 151645, "torch_dtype": "float16", "use_sliding_window": False,
        "sliding_window": None, "max_window_layers": layers,
    }
    rng = np.random.default_rng(seed)

    def w(*shape, scale=0.05):
        return (rng.standard_normal(shape) * scale).astype(np.float16)

    t = {"model.embed_tokens.weight": w(vocab, hidden, scale=1.0),
         "model.norm.weight": np.ones(hidden, np.float16)}
    for layer in range(layers):
        p = "model.layers.%d." % layer
        t[p + "input_layernorm.weight"] = np.ones(hidden, np.float16)
        t[p + "post_attention_layernorm.weight"] = np.ones(hidden, np.float16)
        t[p + "self_attn.q_proj.weight"] = w(heads * head_dim, hidden)
        t[p + "self_attn.k_proj.weight"] = w(kv_heads * head_dim, hidden)
        t[p + "self_attn.v_proj.weight"] = w(kv_heads * head_dim, hidden)
        t[p + "self_attn.o_proj.weight"] = w(hidden, heads * head_dim)
        t[p + "self_attn.q_norm.weight"] = np.ones(head_dim, np.float16)
        t[p + "self_attn.k_norm.weight"] = np.ones(head_dim, np.float16)
        t[p + "mlp.gate_proj.weight"] = w(ffn, hidden)
        t[p + "mlp.up_proj.weight"] = w(ffn, hidden)
        t[p + "mlp.down_proj.weight"] = w(hidden, ffn)
        if layer in rosa_layers:
            for name in ("rosa_q_proj", "rosa_k_proj", "rosa_v_proj", "rosa_out"):
                t[p + name + ".weight"] = w(hidden, hidden, scale=0.3)
            for name in ("rosa_e0", "rosa_e1", "rosa_alpha"):
                t[p + name] = w(hidden, scale=0.5)
    save_file(t, os.path.join(d, "model.safetensors"))
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    return d


if __name__ == "__main__":
    import sys
    write(sys.argv[1])
