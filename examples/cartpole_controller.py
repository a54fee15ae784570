"""A scripted CartPole controller, used as the expert: python run.py env=cartpole expert=python
expert.target=examples.cartpole_controller:balance

An expert given as `expert.target=package.module:name` is any batched callable obs -> action: here a function of a
batch of CartPole observations (cart position, cart velocity, pole angle, pole angular velocity) that pushes the
cart towards the side the pole is falling to, which keeps it up."""
import numpy as np


def balance(obs: np.ndarray) -> np.ndarray:
    """0 (push left) or 1 (push right) for each observation: push right when the pole leans or turns right."""
    angle, turning = obs[:, 2], obs[:, 3]
    return (angle + 0.5 * turning > 0).astype(np.int64)


class Proportional:
    """The same rule as a class built with keyword arguments (expert.kwargs): push right when angle + gain x turning
    is positive."""

    def __init__(self, gain: float = 0.5):
        self.gain = gain

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return (obs[:, 2] + self.gain * obs[:, 3] > 0).astype(np.int64)
