"""The evaluation of a fine-tune (inference/evaluate.py) runs end to end on fixtures: a
tiny random-weight base, a two-step fine-tune of it, the held-out rows of the export."""

from __future__ import annotations

import io
import json

from django.core.management import call_command

from inference.finetune import FinetuneSettings, finetune
from tests.inference.tiny_models import build_model, write_pairs


def test_the_evaluation_compares_base_and_fine_tuned_on_the_held_out_rows(tmp_path):
    base = build_model(tmp_path / "tiny-llama", "llama")
    data = write_pairs(tmp_path / "export", 10)
    result = finetune(
        dataset=data,
        out_dir=tmp_path / "models",
        base=str(base),
        settings=FinetuneSettings(max_steps=1, max_length=128),
    )
    out = io.StringIO()
    call_command("evaluate_model", dataset=str(data), candidate=result.folder, base=str(base), stdout=out)
    printed = out.getvalue().splitlines()
    assert printed[0] == "held-out rows: 2"
    assert printed[1].split() == ["base", "fine-tuned"]
    report = json.loads(printed[-1])
    assert report["held_out_rows"] == 2
    assert report["models"]["base"]["model"] == "tiny-llama"
    assert report["models"]["candidate"]["model"] == result.run_id
    for figures in report["models"].values():
        assert -1 <= figures["embedding_similarity"] <= 1
        assert 0 <= figures["edit_distance_ratio"] <= 1
    # Held out: the two most recent rows (8 and 9 of 0..9), never trained on.
    assert report["teacher_example"] == "What do you get if you count 8 more from 8?"
