"""The one percentile (nearest rank) of the stats page and the benchmarks."""

import pytest

from tutor.measures import percentile


@pytest.mark.parametrize(
    "values, share, expected",
    [
        (range(1, 101), 0.95, 95),
        (range(1, 101), 0.5, 50),
        (range(1, 101), 0.99, 99),
        ([4, 1, 3, 2], 0.5, 2),  # unsorted in, a value that was measured out
        ([4, 1, 3, 2], 0.95, 4),
        ([7.25], 0.95, 7.2),
        ([], 0.95, None),
    ],
)
def test_the_percentile_is_a_measured_value_at_or_above_the_share(values, share, expected):
    assert percentile(values, share) == expected


def test_the_percentile_keeps_every_digit_when_asked():
    assert percentile([0.123456, 9.0], 0.5, digits=None) == 0.123456
