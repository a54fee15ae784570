"""The ensemble learner (EnsembleDAgger: Menda, Driggs-Campbell & Kochenderfer 2019; ThriftyDAgger: Hoque et al.
2021): K MLP learners (the members; GRU students under `policy=gru_ensemble`), each fitted on its own bootstrap
resample of D with the MLP learner's budget.

It acts with the members' mean action, mu(s) = 1/K sum_k a_k(s), and its uncertainty is their spread in scaled
action units ([-1, 1] per dimension):

    sigma(s) = 1/d sum_j std_k(a_kj(s))     (std over the K members, population form; mean over the d action dims)

a_k(s) is the action member k would take, clipped to the bounds like every action: members that all saturate at
the same bound agree on what is done there. The members differ by their initial weights (drawn one after another
from torch's global generator) and by their resamples (`bootstrap`: n indices drawn with replacement from the
fit's generator); the papers leave the resampling open, and `bootstrap: false` fits every member on all of D.

Where the run may fork (`fit_beside`, set by `dagger.app` as for the evaluations beside the loop: `dagger.beside`),
the first member is fitted by a forked copy of the process on the machine's other core while this process fits
the others, and its weights and optimiser state come back from it: the same numbers as fitting them in turn, since
each member's fit reads only D and its own generator.
"""
from __future__ import annotations

import io
from typing import Annotated

import gymnasium as gym
import numpy as np
import torch

from dagger.beside import Beside
from dagger.schemas import BOOLEAN, Help, integer
from dagger.data import Labelled, Pairs
from dagger.actions import actions_of
from dagger.policy.fitting import chunks
from dagger.policy.mlp import MLPConfig, MLPLearner


class EnsembleConfig(MLPConfig):
    """`policy=ensemble`: the MLP keys (per member), and how many members and how they resample D."""

    members: Annotated[int, integer(1, 256), Help("K: how many learners")]
    bootstrap: Annotated[bool, BOOLEAN, Help("each member fits its own resample of D (false: all of D)")]


class EnsembleLearner:
    """K `MLPLearner`s (or another `Member` class) acting with their mean action; their spread is the uncertainty
    the gates read."""

    Config = EnsembleConfig
    Member: type[MLPLearner] = MLPLearner  # what each member is (built from the same config)
    fit_beside = False  # the run may fork: the first member is fitted in a forked copy beside the others

    def __init__(self, cfg: EnsembleConfig, observation_space: gym.spaces.Box, action_space: gym.spaces.Box,
                 device: str = "cpu"):
        self.members = [self.Member(cfg, observation_space, action_space, device) for _ in range(cfg.members)]
        self.bootstrap = cfg.bootstrap
        self.actions = actions_of(action_space)

    def scaled_member_actions(self, obs: np.ndarray) -> np.ndarray:
        """Every member's action as features (`dagger.actions`: scaled units, or a one-hot choice), (K, n, head)."""
        return np.stack([self.actions.features(m.act(obs)) for m in self.members])

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The members' mean action (within the bounds, as each member's is), or their majority choice."""
        return self.actions.from_features(self.scaled_member_actions(obs).mean(0))

    def uncertainty(self, obs: np.ndarray) -> np.ndarray:
        """sigma(s) per state, (n,): the std across members, averaged over the action dimensions (for discrete
        choices, over the one-hot votes: 0 where all members agree)."""
        return self.scaled_member_actions(obs).std(0).mean(-1)

    def act_and_uncertainty(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`act(obs)` and `uncertainty(obs)` from one pass of the members (the gates need both at every step)."""
        return self.mean_and_spread(self.scaled_member_actions(obs))

    def mean_and_spread(self, scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The members' mean action and sigma(s), from their scaled actions (K, n, head)."""
        return self.actions.from_features(scaled.mean(0)), scaled.std(0).mean(-1)

    def fit(self, data: Labelled, generator: torch.Generator) -> dict[str, float]:
        """Each member fits its own resample of D (or D itself) with its own generator seeded from `generator`."""
        shared = self.members_data(data)
        seeds = [int(torch.randint(2**31 - 1, (1,), generator=generator)) for _ in self.members]

        def fit(k: int) -> dict[str, float]:
            own = torch.Generator().manual_seed(seeds[k])
            return self.members[k].fit(self._resample(shared, own) if self.bootstrap else shared, own)

        first = (Beside(lambda: (fit(0), self.members[0].state_dict()), what="the fit of the first member",
                        encode=torch_bytes, decode=from_torch_bytes)
                 if self.fit_beside and len(self.members) > 1 else None)
        try:
            fitted = [None if first is not None and k == 0 else fit(k) for k in range(len(self.members))]
        except BaseException:  # the run stops (an error, a signal): so does the copy
            if first is not None:
                first.cancel()
            raise
        if first is not None:
            fitted[0], state = first.result()
            self.members[0].load_state_dict(state)
        return {"train_loss": float(np.mean([f["train_loss"] for f in fitted])),
                "gradient_steps": fitted[-1]["gradient_steps"], "ensemble_spread": self.spread_over(shared)}

    def members_data(self, data: Labelled) -> Labelled:
        """What every member fits: D's pairs, read once for all of them (D gathers them at each read)."""
        return Pairs(data.obs, data.acts)

    def spread_over(self, shared: Labelled) -> float:
        """Mean sigma(s) over D's states (the fit's `ensemble_spread`)."""
        return float(self._spread_on(shared.obs))

    @staticmethod
    def _resample(pairs: Pairs, generator: torch.Generator) -> Pairs:
        idx = torch.randint(len(pairs), (len(pairs),), generator=generator).numpy()
        return Pairs(pairs.obs[idx], pairs.acts[idx])

    def _spread_on(self, obs: np.ndarray) -> float:
        """Mean sigma(s) over the states `obs` (D's)."""
        if not len(obs):
            return 0.0
        return sum(float(self.uncertainty(obs[part]).sum()) for part in chunks(len(obs), obs.shape[1])) / len(obs)

    def policy_state_dict(self) -> dict:
        """The weights that act (saved as learner.pt), keyed `<member>.<parameter>` like an nn.ModuleList."""
        return {f"{k}.{name}": value for k, member in enumerate(self.members)
                for name, value in member.policy_state_dict().items()}

    def state_dict(self) -> dict:
        return {"members": [m.state_dict() for m in self.members]}

    def load_state_dict(self, state: dict) -> None:
        if len(state["members"]) != len(self.members):
            raise ValueError(f"the saved ensemble has {len(state['members'])} members, this one {len(self.members)}")
        for member, saved in zip(self.members, state["members"]):
            member.load_state_dict(saved)


def torch_bytes(value) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def from_torch_bytes(raw: bytes):
    """What `torch_bytes` wrote (tensors, numbers, dicts, lists: loaded without unpickling objects)."""
    return torch.load(io.BytesIO(raw), weights_only=True)
