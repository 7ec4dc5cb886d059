"""sim/profile.py: every cycle of an engine is blocked, busy or waiting, from its ports alone."""

from spikehq.sim.profile import classify


def test_blocked_wins_over_everything():
    assert classify([(1, 1)], [(1, 0)]) == "blocked"
    assert classify([(0, 1)], [(1, 1), (1, 0)]) == "blocked"      # one fork output not taken


def test_a_moving_token_is_busy():
    assert classify([(1, 1)], [(0, 1)]) == "busy"
    assert classify([(0, 1)], [(1, 1)]) == "busy"


def test_open_input_with_nothing_offered_is_waiting():
    assert classify([(0, 1), (0, 0)], [(0, 1)]) == "waiting"


def test_closed_inputs_with_nothing_moving_is_busy():
    # computing on earlier input: inputs closed (offered or not), output idle
    assert classify([(1, 0)], [(0, 1)]) == "busy"
    assert classify([(0, 0)], [(0, 0)]) == "busy"
