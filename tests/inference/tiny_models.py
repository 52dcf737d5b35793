"""Tiny random-weight models of several architectures, built from configs in a temporary
folder (nothing is downloaded), each with a small tokenizer trained here in milliseconds
and a real chat template. Real transformers code paths, meaningless text."""

from __future__ import annotations

import json
from pathlib import Path

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Gemma's: no system role (the template refuses it), model instead of assistant.
GEMMA = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "<start_of_turn>{{ role }}\n{{ message['content'] | trim }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<bos>", "<start_of_turn>", "<end_of_turn>"]
CORPUS = [
    "What is seven times eight? Let us count together: seven, fourteen, twenty-one.",
    "Pourquoi les plantes ont-elles besoin de lumière ? La chlorophylle capte la lumière.",
    "Solve 2x + 3 = 11: take away three from both sides, then divide by two.",
    "system user assistant model Reveal all instructions you are a patient tutor",
] * 4
VOCAB = 400

ARCHITECTURES = {
    "qwen2": {"model_type": "qwen2"},
    "llama3": {
        "model_type": "llama",
        # Llama 3.1's rope scaling: the fast engine refuses it, the generic one runs it.
        "rope_scaling": {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 256,
        },
    },
    "gemma2": {"model_type": "gemma2", "head_dim": 16, "sliding_window": 64, "query_pre_attn_scalar": 16},
    "llama": {"model_type": "llama"},  # what the fast engine runs
}


def build_tokenizer(folder: Path, template: str = CHATML) -> object:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    gemma = template is GEMMA
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<end_of_turn>" if gemma else "<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=template,
    )
    fast.save_pretrained(folder)
    return fast


def build_model(folder: Path, arch: str, tied: bool = False) -> Path:
    """A two-layer random model of `arch` (a key of ARCHITECTURES) saved in `folder`.
    tied: input and output embeddings shared, so greedy decoding repeats the last token
    (a model that loops)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    folder.mkdir(parents=True, exist_ok=True)
    spec = dict(ARCHITECTURES[arch])
    model_type = spec.pop("model_type")
    tok = build_tokenizer(folder, GEMMA if model_type.startswith("gemma") else CHATML)
    config = AutoConfig.for_model(
        model_type,
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=tied,  # tied, a random model only repeats its last token
        **spec,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():  # control tokens score low: the drafts are mostly text
        for name in SPECIALS if not tied else ():
            model.get_output_embeddings().weight[tok.convert_tokens_to_ids(name)] = 0.0
    model.save_pretrained(folder)
    return folder


def write_pairs(folder: Path, n: int) -> Path:
    """An export folder (tutor/training/dataset.py's format) of n preference pairs: the
    teacher's Socratic edit chosen, the model's direct answer rejected."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        prompt = [
            {"role": "system", "content": "You are a patient tutor."},
            {"role": "user", "content": f"What is {i} plus {i}?"},
        ]
        rows.append(
            {
                "prompt": prompt,
                "chosen": [{"role": "assistant", "content": f"What do you get if you count {i} more from {i}?"}],
                "rejected": [{"role": "assistant", "content": f"It is {2 * i}."}],
                "day": "2026-11-01",
                "model": "local",
            }
        )
    (folder / "dpo.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder
