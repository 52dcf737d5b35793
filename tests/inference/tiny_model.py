"""A tiny random-weight Llama with a tokenizer trained on the spot: real code paths of
transformers, PEFT, TRL and the in-process engine, nothing downloaded, seconds to train."""

from __future__ import annotations

import json
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def tiny_llama(folder: Path, texts: list[str], *, model_type: str = "llama") -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        texts + ["system user assistant"],
        trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL, show_progress=False),
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(str(folder))
    torch.manual_seed(0)
    config = AutoConfig.for_model(
        model_type,
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        eos_token_id=fast.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=fast.convert_tokens_to_ids("<|endoftext|>"),
        bos_token_id=None,
    )
    AutoModelForCausalLM.from_config(config).save_pretrained(str(folder))
    return folder


def write_pairs(folder: Path, n: int) -> Path:
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


def texts_of(n: int) -> list[str]:
    return [
        f"You are a patient tutor. What is {i} plus {i}? What do you get if you count {i} more from {i}? It is {2 * i}."
        for i in range(n)
    ]
