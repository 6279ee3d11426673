"""The learning-rate schedule: Keras' PiecewiseConstantDecay over optimizer steps.

Oracle: the paper's recipes written out epoch by epoch (1e-3 for epochs
0-79, 1e-4 for 80-159, 1e-5 after; mutual: 3e-4, 1e-4 from 60, 1e-5 from
120). Every step of an epoch must use the epoch's rate, and the ``lr``
column logged per epoch must be that rate as written in the config.
"""

import pytest

from reid_tf.callbacks import EpochLearningRate
from reid_tf.config import TrainConfig
from reid_tf.fit_loop import learning_rate_boundaries, learning_rate_schedule


def _dense(values_by_range, epochs):
    out = []
    for value, count in values_by_range:
        out += [value] * count
    return out[:epochs]


@pytest.mark.parametrize("mutual, expected", [
    (False, [(1e-3, 80), (1e-4, 80), (1e-5, 40)]),
    (True, [(3e-4, 60), (1e-4, 60), (1e-5, 80)]),
])
def test_rate_at_every_step_of_the_epoch_boundaries(mutual, expected):
    steps = 7
    cfg = TrainConfig(mutual=mutual, steps_per_epoch=steps).resolved()
    dense = _dense(expected, 200)
    schedule = learning_rate_schedule(cfg.lr_milestones, cfg.lr_values, steps)
    epochs = sorted({0, 199} | {m + d for m in cfg.lr_milestones for d in (-1, 0, 1)})
    for epoch in epochs:
        # the optimizer calls the schedule with its update count before each step
        for step in (epoch * steps, epoch * steps + steps - 1):
            assert float(schedule(step)) == pytest.approx(dense[epoch], rel=1e-6), (epoch, step)
    logger = EpochLearningRate(steps, learning_rate_boundaries(cfg.lr_milestones, steps),
                               cfg.lr_values)
    for epoch in range(200):
        logs = {}
        logger.on_epoch_end(epoch, logs)
        assert logs["lr"] == dense[epoch]  # exactly the configured value


def test_no_milestones_is_a_constant_rate():
    assert learning_rate_schedule([], [2e-3], 10) == 2e-3


def test_optimizer_follows_the_schedule_and_resumes_from_its_iterations():
    import keras
    import numpy as np

    schedule = learning_rate_schedule([2, 3], [1e-1, 1e-2, 1e-3], steps_per_epoch=4)
    var = keras.Variable(np.zeros(1, "float32"))
    sgd = keras.optimizers.SGD(schedule)
    sgd.build([var])
    used = []
    for _ in range(14):
        before = float(var.numpy()[0])
        sgd.apply_gradients([(np.ones(1, "float32"), var)])
        used.append(round(before - float(var.numpy()[0]), 7))
    assert used == [0.1] * 8 + [0.01] * 4 + [0.001] * 2
    # a restored iteration count puts the rate where it was
    resumed = keras.optimizers.SGD(schedule)
    resumed.build([var])
    resumed.iterations.assign(11)
    before = float(var.numpy()[0])
    resumed.apply_gradients([(np.ones(1, "float32"), var)])
    assert round(before - float(var.numpy()[0]), 7) == 0.01
