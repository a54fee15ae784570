"""The recurrent student (`policy=gru`): a GRU over the student's last K views (Cho et al. 2014, "Learning Phrase
Representations using RNN Encoder-Decoder"), for students that must infer what they do not see (velocities,
noise-free states) from how their observations change.

The view stacks the last K views (`obs.history` = K; `dagger.views`), restarted at every episode's start and
advanced at every step whoever acts, and the GRU reads that window as a sequence:

    h_0 = 0,   h_k = GRU(h_{k-1}, f_{t-K+k})   for k = 1..K,     a_t = head([h_K, a_{t-1}])

(with `obs.actions`, the previous executed action joins the GRU's last output). It is fitted like the MLP
(`dagger.policy.mlp`: the same loss, minibatches, learning-rate schedule, warm start and averaging), each D row
being one window, so back-propagation runs through its K steps (truncated BPTT on segments of K steps ending at
each labelled state).

Choice where the literature leaves one open: the hidden state is recomputed from the window at every step rather
than carried through the episode, so the learner acts on exactly the context it was trained on (robomimic's RNN
policies carry it and reset it every `horizon` steps instead). The window and the previous action live in the
view, so every batched call over D (DART's noise, the gates' training) stays valid and a checkpoint holds the
window. The window is `obs.history` views; where the view keeps one (`obs.history=1`, the default), the GRU
gets a window of `GRULearner.WINDOW` = 8 views (the student_view sweep's better length for the GRU).

`policy=gru_carried` is the other choice, a GRU whose hidden state is carried through the whole episode
(`CarriedGRULearner`, below). `policy=gru_ensemble` makes K window-GRU students the members of the ensemble learner
(`dagger.policy.ensemble`: the mean action acts, the members' spread is the uncertainty EnsembleDAgger and
ThriftyDAgger read).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from dagger.actions import actions_of
from dagger.config import ConfigError
from dagger.schemas import BOOLEAN, COUNT, Help
from dagger.policy.carried import ACTS_ALONG_EPISODES
from dagger.policy.ensemble import EnsembleConfig, EnsembleLearner
from dagger.policy.fitting import PREDICT_NUMBERS, mlp
from dagger.policy.mlp import MLPConfig, MLPLearner
from dagger.views import ViewConfig


class GRUConfig(MLPConfig):
    """`policy=gru`: the MLP's fit keys, the GRU's width, and the view's layout (conf/policy/gru.yaml reads
    `steps` and `actions` from the obs group)."""

    gru_size: Annotated[int, COUNT, Help("the GRU's hidden units")]
    steps: Annotated[int, COUNT, Help("K: the views in a window (obs.history; 8 where that is 1)")]
    actions: Annotated[bool, BOOLEAN, Help("the window ends with the previous action (obs.actions)")]


class WindowGRU(nn.Module):
    """[f_1, ..., f_K, extra] (flat) -> GRU over f_1..f_K -> head([h_K, extra])."""

    def __init__(self, steps: int, feature_dim: int, extra: int, gru_size: int, hidden: list[int], activation: str,
                 out_dim: int):
        super().__init__()
        self.steps, self.feature_dim = steps, feature_dim
        self.gru = nn.GRU(feature_dim, gru_size, batch_first=True)
        self.head = mlp([gru_size + extra, *hidden, out_dim], activation)

    def forward(self, flat: torch.Tensor) -> torch.Tensor:
        window = flat[:, :self.steps * self.feature_dim].reshape(len(flat), self.steps, self.feature_dim)
        outputs, _ = self.gru(window)
        return self.head(torch.cat([outputs[:, -1], flat[:, self.steps * self.feature_dim:]], dim=1))


class GRULearner(MLPLearner):
    """The MLP learner with a GRU over the view's window in place of the MLP's first layers."""

    Config = GRUConfig
    WINDOW = 8  # the views a GRU reads where the view keeps one (obs.history=1, the default)

    @classmethod
    def with_window(cls, cfg: GRUConfig, obs: ViewConfig) -> tuple[GRUConfig, ViewConfig]:
        """The learner's and the view's configs, the view keeping the GRU's window: `obs.history` views, or WINDOW
        where it keeps one (`policy.steps` follows obs.history unless set apart)."""
        if obs.history > 1 or cfg.steps > 1:
            return cfg, obs
        return cfg.model_copy(update={"steps": cls.WINDOW}), obs.model_copy(update={"history": cls.WINDOW})

    def __init__(self, cfg: GRUConfig, observation_space: gym.spaces.Box, action_space: gym.spaces.Box,
                 device: str = "cpu"):
        extra = actions_of(action_space).head if cfg.actions else 0  # a discrete choice is seen one-hot
        width = observation_space.shape[0] - extra
        if cfg.steps < 2 or width % cfg.steps:
            raise ConfigError(f"policy.steps={cfg.steps} must be >= 2 (the GRU reads a window of views as a sequence)"
                              if cfg.steps < 2 else f"policy.steps={cfg.steps} does not divide the view's width {width}")
        self.layout = (cfg.steps, width // cfg.steps, extra)
        super().__init__(cfg, observation_space, action_space, device)

    def network(self) -> Callable[[int, int], nn.Module]:
        steps, feature_dim, extra = self.layout
        return lambda obs_dim, out_dim: WindowGRU(steps, feature_dim, extra, self.cfg.gru_size, self.cfg.hidden,
                                                  self.cfg.activation, out_dim)


class GRUEnsembleConfig(GRUConfig, EnsembleConfig):
    """`policy=gru_ensemble`: the GRU's keys (per member) and the ensemble's (members, bootstrap)."""


class GRUEnsembleLearner(EnsembleLearner):
    """An ensemble whose members are GRU students."""

    Config = GRUEnsembleConfig
    Member = GRULearner


class CarriedGRUConfig(MLPConfig):
    """`policy=gru_carried`: the MLP's fit keys (its head's `hidden` layers), the GRU's width and TBPTT's segment."""

    gru_size: Annotated[int, COUNT, Help("the GRU's hidden units")]
    segment: Annotated[int, COUNT, Help("TBPTT: the steps of an episode that back-propagation runs through")]


class EpisodeGRU(nn.Module):
    """(o_1..o_T, h_0) -> GRU -> head(h_t) at every step t, and h_T."""

    def __init__(self, obs_dim: int, gru_size: int, hidden: list[int], activation: str, out_dim: int):
        super().__init__()
        self.gru = nn.GRU(obs_dim, gru_size, batch_first=True)
        self.head = mlp([gru_size, *hidden, out_dim], activation)

    def forward(self, sequences: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        states, last = self.gru(sequences, h0.unsqueeze(0))
        return self.head(states), last[0]


class CarriedGRULearner(MLPLearner):
    """A GRU student (Cho et al. 2014) whose hidden state is carried through the whole episode, as robomimic's RNN
    policies and R2D2 (Kapturowski et al. 2019) carry theirs, fitted by truncated back-propagation through time
    (Williams & Peng 1990) on the episodes of D's record:

        h_0 = 0,   h_t = GRU(h_{t-1}, o_t),   a_t = head(h_t)      along each episode, whoever acted

    It acts through `dagger.policy.carried.Carried` (the collector advances it at every step and restarts it at
    each episode's start; evaluations and videos start every episode from h_0). A fit cuts every episode of the
    record into segments of `segment` steps and takes minibatches of batch_size / segment segments (at least one),
    so a minibatch holds about `batch_size` steps, with the MLP's budget, schedule and warm start. The loss is the
    MLP's on the labelled steps of each segment; the unlabelled ones (the learner drove, a gate did not ask) are
    still read, as the learner saw them. Choices the literature leaves open: a segment starts from the hidden
    state that the current weights give at that point of its episode (recomputed without gradients at the start
    of the fit and after every pass over D: R2D2's stored state, kept fresh), and the segments are the episode's
    consecutive non-overlapping slices. Vector views only (`policy=cnn_gru` reads camera frames)."""

    Config = CarriedGRUConfig

    def __init__(self, cfg: CarriedGRUConfig, observation_space: gym.spaces.Box, action_space: gym.spaces.Box,
                 device: str = "cpu"):
        if observation_space.dtype == np.uint8:
            raise ConfigError("policy=gru_carried reads vector views, and obs=pixels gives camera frames: use "
                              "policy=cnn_gru")
        super().__init__(cfg, observation_space, action_space, device)

    def network(self) -> Callable[[int, int], nn.Module]:
        return lambda obs_dim, out_dim: EpisodeGRU(obs_dim, self.cfg.gru_size, self.cfg.hidden, self.cfg.activation,
                                                   out_dim)

    def act(self, obs: np.ndarray) -> np.ndarray:
        raise TypeError(ACTS_ALONG_EPISODES)

    def initial_state(self, n: int) -> torch.Tensor:
        return torch.zeros(n, self.cfg.gru_size, device=self.device)

    @torch.no_grad()
    def step(self, obs: np.ndarray, hidden: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
        policy = self.acting()
        x = policy.standardize(torch.as_tensor(obs, dtype=torch.float32, device=self.device))
        out, hidden = policy.net(x.unsqueeze(1), hidden)
        return policy.action_of(out[:, 0]), hidden

    @torch.no_grad()
    def replay(self, data) -> np.ndarray:
        record, policy = data.transitions, self.acting()
        outputs = torch.zeros(len(record), policy.net.head[-1].out_features)
        obs = policy.standardize(torch.as_tensor(record["obs"], dtype=torch.float32, device=self.device))
        batches = self.episode_batches(record.episodes(), record["obs"].shape[1])
        for rows, out in self.along_episodes(batches, obs, lambda sequences, h0: policy.net(sequences, h0)[0]):
            outputs[rows] = out.cpu()
        return policy.action_of(outputs[torch.as_tensor(data.rows)])

    def episode_batches(self, episodes: list[np.ndarray], obs_dim: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The record's episodes as padded groups (`padded`: rows, mask), each small enough for one pass."""
        return [padded(group) for group in episode_groups(episodes, obs_dim + self.cfg.gru_size)]

    def along_episodes(self, batches: list[tuple[torch.Tensor, torch.Tensor]], obs: torch.Tensor,
                       run: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
                       ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """`run(sequences, h_0)` along every episode from its start, a padded group of them at a time (`batches`):
        (rows, outputs) of the real steps."""
        for rows, valid in batches:
            out = run(obs[rows] * valid[..., None], self.initial_state(len(rows)))
            yield rows[valid], out[valid]

    def fit(self, data, generator: torch.Generator) -> dict[str, float]:
        """TBPTT on the record's episode segments for `fit_steps(|D|)` minibatches; the mean loss of the last 10%."""
        record = data.transitions
        self.start_fit(data.obs, generator)
        with torch.no_grad():
            obs = self.policy.standardize(torch.as_tensor(record["obs"], dtype=torch.float32, device=self.device))
            labelled = torch.as_tensor(record["labelled"], device=self.device)
            scaled = self.policy.scale(torch.as_tensor(record["label"][record["labelled"]], device=self.device))
            targets = scaled.new_zeros((len(record), *scaled.shape[1:]))
            targets[labelled] = scaled
        episodes = record.episodes()  # read once: the segments and the passes along whole episodes both use them
        parts, before = segments(episodes, self.cfg.segment)
        rows, valid = padded(parts)
        taught = (valid & labelled[rows]).any(1)  # only segments with a label in them are drawn
        rows, valid, before = rows[taught], valid[taught], torch.as_tensor(before)[taught]
        batches = self.episode_batches(episodes, obs.shape[1])  # the same every time the starts are recomputed
        steps, per_batch = self.fit_steps(len(data)), max(1, self.cfg.batch_size // self.cfg.segment)
        refresh = max(1, -(-len(data) // self.cfg.batch_size))  # minibatches in one pass over D
        starts, count = None, 0

        def batch_loss() -> torch.Tensor:
            nonlocal starts, count
            if count % refresh == 0:  # each segment's h_0 under the current weights
                starts = self.hidden_before(batches, obs, before)
            count += 1
            pick = torch.randint(len(rows), (per_batch,), generator=generator).to(self.device)
            r, v = rows[pick], valid[pick]
            out, _ = self.policy.net(obs[r] * v[..., None], starts[pick])
            mask = v & labelled[r]
            return self.policy.output_loss(out[mask], targets[r[mask]])

        return {"train_loss": float(self.minibatches(steps, batch_loss).mean()), "gradient_steps": steps}

    @torch.no_grad()
    def hidden_before(self, batches: list[tuple[torch.Tensor, torch.Tensor]], obs: torch.Tensor,
                      before: torch.Tensor) -> torch.Tensor:
        """The hidden state the current weights reach after the record's rows `before` (h_0 where -1, a segment that
        starts its episode), running the GRU along every episode (`batches`) from its start."""
        hidden = torch.zeros(len(obs), self.cfg.gru_size, device=self.device)  # h_t after each row's step
        gru = self.policy.net.gru
        for rows, states in self.along_episodes(batches, obs, lambda sequences, h0: gru(sequences, h0.unsqueeze(0))[0]):
            hidden[rows] = states
        return torch.where((before >= 0)[:, None], hidden[before.clamp(min=0)], self.initial_state(len(before)))


class CarriedGRUEnsembleConfig(CarriedGRUConfig, EnsembleConfig):
    """`policy=gru_carried_ensemble`: the carried GRU's keys (per member) and the ensemble's."""


class CarriedGRUEnsembleLearner(EnsembleLearner):
    """K carried GRUs (`CarriedGRULearner`), each fitted on all of D's episodes from its own initial weights, acting
    along episodes with their mean action; their spread at each step (the ensemble's sigma) is EnsembleDAgger's
    doubt. `bootstrap` must be false (a resample of D's rows breaks its episodes), and ThriftyDAgger, which fits its
    risk critic and thresholds on D's states one by one, refuses it."""

    Config = CarriedGRUEnsembleConfig
    Member = CarriedGRULearner

    def __init__(self, cfg: CarriedGRUEnsembleConfig, observation_space: gym.spaces.Box, action_space: gym.spaces.Box,
                 device: str = "cpu"):
        if cfg.bootstrap:
            raise ConfigError("policy.bootstrap=true resamples D's rows, and a carried GRU fits whole episodes: use "
                              "policy.bootstrap=false (the members differ by their initial weights)")
        super().__init__(cfg, observation_space, action_space, device)

    def scaled_member_actions(self, obs: np.ndarray) -> np.ndarray:
        raise TypeError(ACTS_ALONG_EPISODES)

    def initial_state(self, n: int) -> torch.Tensor:
        return torch.stack([member.initial_state(n) for member in self.members], 1)

    def step(self, obs: np.ndarray, hidden: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
        actions, _, hidden = self.step_with_uncertainty(obs, hidden)
        return actions, hidden

    def step_with_uncertainty(self, obs: np.ndarray, hidden: torch.Tensor
                              ) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
        """One step of every member: the mean action, sigma per env, and the members' next hidden states."""
        steps = [member.step(obs, hidden[:, k]) for k, member in enumerate(self.members)]
        actions, spread = self.mean_and_spread(np.stack([self.actions.features(a) for a, _ in steps]))
        return actions, spread, torch.stack([h for _, h in steps], 1)

    def replayed(self, data) -> tuple[np.ndarray, np.ndarray]:
        """The mean action and sigma at D's labelled steps, every member replaying D's episodes."""
        return self.mean_and_spread(np.stack([self.actions.features(m.replay(data)) for m in self.members]))

    def replay(self, data) -> np.ndarray:
        return self.replayed(data)[0]

    def members_data(self, data):
        return data  # the members read D's episodes

    def spread_over(self, shared) -> float:
        return float(self.replayed(shared)[1].mean()) if len(shared) else 0.0


def segments(episodes: list[np.ndarray], length: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Each episode's consecutive slices of `length` steps (rows of the record), and the row of the step before each
    slice in its episode (-1 where the slice starts the episode)."""
    parts, before = [], []
    for rows in episodes:
        for start in range(0, len(rows), length):
            parts.append(rows[start:start + length])
            before.append(rows[start - 1] if start else -1)
    return parts, np.asarray(before, dtype=np.int64)


def padded(parts: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Row sequences of different lengths as one (n, longest) tensor of rows (0 past each one's end) and a mask of
    the real steps."""
    longest = max(len(part) for part in parts)
    rows = torch.zeros(len(parts), longest, dtype=torch.long)
    valid = torch.zeros(len(parts), longest, dtype=torch.bool)
    for i, part in enumerate(parts):
        rows[i, :len(part)] = torch.as_tensor(part)
        valid[i, :len(part)] = True
    return rows, valid


def episode_groups(episodes: list[np.ndarray], width: int) -> list[list[np.ndarray]]:
    """The episodes in groups whose padded batch of `width` numbers per step stays within PREDICT_NUMBERS."""
    groups: list[list[np.ndarray]] = [[]]
    for rows in sorted(episodes, key=len, reverse=True):
        if groups[-1] and (len(groups[-1]) + 1) * len(groups[-1][0]) * width > PREDICT_NUMBERS:
            groups.append([])
        groups[-1].append(rows)
    return [group for group in groups if group]
