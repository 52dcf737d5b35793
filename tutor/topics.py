"""Questions grouped by topic, for "where students struggle": sentence embeddings
(tutor.embeddings, multilingual: French and English questions about one thing meet)
clustered by average linkage.

Average linkage merges the two closest clusters while the mean similarity between their
members stays at or above the threshold: a chain of "a bit alike" questions does not
drag two topics together, as single linkage would. O(n²) memory and O(n³) time at worst,
fine for the few hundred questions of a class's week (about 0.1 s for 300).
"""

from __future__ import annotations

import numpy as np

# multilingual-e5-small puts most texts above 0.7: paraphrases and translations of one
# question land near 0.9, different topics of one subject near 0.8. At 0.88, on
# bench/classroom_questions.py, "what is a prime", "is 1 prime" and the French question
# make one topic, as do adding and simplifying fractions, while equations stay apart
# (0.86 joined them to fractions); at 0.90 the French question on primes left its topic
# (bench/class_topics.py, tests/tutor/test_class_topics.py).
THRESHOLD = 0.88


def cluster(vectors: np.ndarray, *, threshold: float = THRESHOLD) -> list[list[int]]:
    """Indexes of `vectors` (rows of length 1) grouped by average linkage at `threshold`,
    largest cluster first, each cluster's indexes in their order."""
    n = len(vectors)
    if n == 0:
        return []
    similarity = np.asarray(vectors, dtype=np.float64) @ np.asarray(vectors, dtype=np.float64).T
    np.fill_diagonal(similarity, -np.inf)
    sizes = np.ones(n)
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    alive = np.ones(n, dtype=bool)
    while True:
        masked = np.where(alive[:, None] & alive[None, :], similarity, -np.inf)
        flat = int(np.argmax(masked))
        a, b = divmod(flat, n)
        if masked[a, b] < threshold:
            break
        # Lance-Williams for average linkage: the merged cluster's mean similarity to each other.
        merged = (sizes[a] * similarity[a] + sizes[b] * similarity[b]) / (sizes[a] + sizes[b])
        similarity[a, :] = merged
        similarity[:, a] = merged
        similarity[a, a] = -np.inf
        sizes[a] += sizes[b]
        alive[b] = False
        similarity[b, :] = -np.inf
        similarity[:, b] = -np.inf
        members[a] = sorted(members[a] + members.pop(b))
    return sorted(members.values(), key=lambda m: (-len(m), m[0]))


def central_order(vectors: np.ndarray, indexes: list[int]) -> list[int]:
    """`indexes` from the most central (the highest mean similarity to the others) on."""
    block = np.asarray(vectors, dtype=np.float64)[indexes]
    mean = (block @ block.T).mean(axis=1)
    return [indexes[i] for i in np.argsort(-mean, kind="stable")]
