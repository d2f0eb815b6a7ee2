"""The accuracy-latency Pareto front."""

from infscale.select.pareto import pareto_front


def test_pareto_front_on_a_hand_made_example():
    latency = [1, 2, 2, 3, 4, 5, 4, float("nan")]
    accuracy = [0.5, 0.6, 0.55, 0.6, 0.7, 0.65, 0.7, 0.9]
    # (2, .55) and (3, .6) lose to (2, .6); (5, .65) to (4, .7); the two (4, .7) tie, both stay
    assert pareto_front(latency, accuracy).tolist() == [
        True,
        True,
        False,
        False,
        True,
        False,
        True,
        False,
    ]
