"""TrainClock: the training time a resumed run reports includes what its checkpoint recorded."""

from __future__ import annotations

import time

from agegender.training.clock import TrainClock


def test_a_resumed_clock_adds_its_time_to_the_checkpoints() -> None:
    fresh = TrainClock()
    assert fresh.seconds == 0.0 and fresh.state_dict() == {"seconds": 0.0}
    clock = TrainClock()
    clock.load_state_dict({"seconds": 100.0})  # what the checkpoint of the earlier run says
    clock.on_fit_start(None, None)
    time.sleep(0.05)
    assert 100.04 <= clock.seconds < 101
    assert clock.state_dict()["seconds"] >= 100.04  # saved again with the next checkpoint


def test_a_checkpoint_without_a_clock_counts_from_zero() -> None:
    clock = TrainClock()
    clock.load_state_dict({})
    clock.on_fit_start(None, None)
    assert 0 <= clock.seconds < 1
