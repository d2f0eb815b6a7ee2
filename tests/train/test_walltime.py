from infscale.train.walltime import train_minutes


def test_a_1b_model_on_20b_tokens_asks_for_its_a100_time_plus_startup():
    # 6 · 1e9 · 20e9 FLOPs at 30 % of 312 TFLOP/s = 1,282,051 s = 21,367.5 min, + 20 min.
    assert train_minutes(10**9, 20 * 10**9) == 21387
    assert train_minutes(10**9, 20 * 10**9, attempt=2) == int(21387.5 * 1.5)


def test_a_tiny_run_still_gets_the_startup_allowance():
    assert train_minutes(1000, 1000) == 20
    assert train_minutes(1000, 1000, attempt=3) == 40
