"""The training stream's window order and the validation sample."""

import numpy as np

from infscale.train.order import WindowOrder, epoch_permutation, validation_rows


def test_each_epoch_reads_every_window_once_in_a_seeded_order():
    order = WindowOrder(100, seed=3)
    first, second = order.windows(range(100)), order.windows(range(100, 200))
    assert sorted(first.tolist()) == list(range(100)) == sorted(second.tolist())
    assert not np.array_equal(first, np.arange(100))  # shuffled, not corpus order
    assert not np.array_equal(first, second)  # each epoch its own permutation
    assert not np.array_equal(first, WindowOrder(100, seed=4).windows(range(100)))


def test_the_order_is_reproducible_and_resumes_bitwise():
    whole = WindowOrder(1000, seed=0).windows(range(2500))  # two and a half epochs
    resumed = WindowOrder(1000, seed=0)  # a new process after a restart at position 1234
    tail = np.concatenate([resumed.windows(range(p, p + 7)) for p in range(1234, 2500, 7)])
    assert np.array_equal(whole[1234:], tail[: 2500 - 1234])
    assert np.array_equal(whole[:1000], epoch_permutation(1000, 0, 0))


def test_a_position_range_across_an_epoch_boundary():
    order = WindowOrder(10, seed=1)
    across = order.windows(range(8, 13))
    assert across.tolist() == [*epoch_permutation(10, 1, 0)[8:], *epoch_permutation(10, 1, 1)[:3]]


def test_validation_windows_span_the_split():
    rows = validation_rows(64, 1000)
    assert len(rows) == 64 and rows[0] == 0 and rows[-1] == 999
    assert len(set(rows.tolist())) == 64 and np.all(np.diff(rows) > 0)
    assert validation_rows(64, 10).tolist() == list(range(10))
