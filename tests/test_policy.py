import copy

import numpy as np
import pytest
import torch

from dagger.data import Pairs
from dagger.policy.mlp import MLPLearner
from tests.conftest import box, policy_config


def mlp_learner(obs: int = 4, act=None, **keys) -> MLPLearner:
    """An MLP learner on [-1, 1]^obs (actions in `act`, a Box; [-1, 1]^2 by default) with conf/policy/mlp.yaml's
    keys changed by `keys`."""
    return MLPLearner(policy_config("mlp", **keys), box(obs), act if act is not None else box(2))


def linear_expert_data(n: int = 2000) -> tuple[Pairs, np.ndarray]:
    rng = np.random.default_rng(0)
    obs = rng.normal(loc=5.0, scale=3.0, size=(n, 4))  # unnormalised on purpose
    weights = rng.normal(size=(4, 2)) / 10
    return Pairs(obs.astype(np.float32), np.clip(obs @ weights, -1, 1).astype(np.float32)), weights


@pytest.mark.parametrize("loss", ["mse", "gaussian"])
def test_fitting_lowers_the_loss_and_imitates(loss):
    data, weights = linear_expert_data()
    learner = mlp_learner(hidden=[64, 64], activation="relu", loss=loss, lr=1e-3, batch_size=128,
                          gradient_steps=600, epochs=0, lr_schedule="constant", warm_start=True)
    with torch.no_grad():
        before = float(learner.policy.loss(torch.as_tensor(data.obs), torch.as_tensor(data.acts)))
    learner.fit(data, torch.Generator().manual_seed(0))
    with torch.no_grad():
        after = float(learner.policy.loss(torch.as_tensor(data.obs), torch.as_tensor(data.acts)))
    assert after < before - 0.1
    error = np.abs(learner.act(data.obs[:200]) - data.acts[:200]).mean()
    assert error < 0.05, error


def test_actions_respect_the_bounds_and_scale():
    obs = np.linspace(-1, 1, 500, dtype=np.float32)[:, None]
    data = Pairs(obs, 2.0 + obs)  # actions in [1, 3]
    learner = mlp_learner(1, box([1.0], [3.0]), hidden=[32], activation="tanh", loss="mse", lr=3e-3, batch_size=64,
                          gradient_steps=800, epochs=0, lr_schedule="constant", warm_start=True)
    learner.fit(data, torch.Generator().manual_seed(0))
    acts = learner.act(np.array([[-1.0], [0.0], [1.0], [50.0]]))
    assert np.all((acts >= 1.0) & (acts <= 3.0))
    np.testing.assert_allclose(acts[:3, 0], [1.0, 2.0, 3.0], atol=0.1)


def test_retraining_from_scratch_is_reproducible_and_differs_from_warm_start():
    data, _ = linear_expert_data(500)

    def fitted(warm: bool) -> np.ndarray:
        torch.manual_seed(0)
        learner = mlp_learner(hidden=[32], activation="relu", loss="mse", lr=1e-3, batch_size=64, gradient_steps=50,
                              epochs=0, lr_schedule="constant", warm_start=warm)
        for it in range(2):
            learner.fit(data, torch.Generator().manual_seed(it))
        return learner.act(data.obs[:5])

    np.testing.assert_array_equal(fitted(False), fitted(False))
    assert not np.allclose(fitted(False), fitted(True))


def test_build_learner_builds_the_class_its_target_names_and_checks_its_keys():
    from omegaconf import OmegaConf

    from dagger.config import ConfigError
    from dagger.policy import build_learner
    from tests.conftest import ROOT

    cfg = OmegaConf.load(ROOT / "conf" / "policy" / "mlp.yaml")
    assert type(build_learner(cfg, box(4), box(2), "cpu")) is MLPLearner
    cfg.bootstrap = True  # an ensemble's key on a single MLP
    with pytest.raises(ConfigError, match="^policy.bootstrap: unknown key"):
        build_learner(cfg, box(4), box(2), "cpu")
    cfg = OmegaConf.load(ROOT / "conf" / "policy" / "mlp.yaml")
    cfg._target_ = "dagger.policy.fitting.mlp"  # not a learner class
    with pytest.raises(ConfigError, match="^policy._target_='dagger.policy.fitting.mlp' is not a learner class"):
        build_learner(cfg, box(4), box(2), "cpu")


def test_fit_budget_grows_with_the_dataset_and_never_falls_below_gradient_steps():
    data, _ = linear_expert_data(1000)
    learner = mlp_learner(hidden=[16], activation="relu", loss="mse", lr=1e-3, batch_size=100, gradient_steps=30,
                          epochs=4.5, lr_schedule="constant", warm_start=True)
    assert [learner.fit_steps(n) for n in (100, 600, 1000, 10_000)] == [30, 30, 45, 450]
    assert learner.fit(data, torch.Generator().manual_seed(0))["gradient_steps"] == 45  # ceil(4.5 * 1000 / 100)
    learner.cfg = learner.cfg.model_copy(update={"epochs": 0.0})  # a fixed budget, as before
    assert learner.fit(data, torch.Generator().manual_seed(0))["gradient_steps"] == 30


def test_cosine_schedule_anneals_each_fit_from_lr_to_zero():
    data, _ = linear_expert_data(300)
    learner = mlp_learner(hidden=[16], activation="relu", loss="mse", lr=0.01, batch_size=50, gradient_steps=40,
                          epochs=0, lr_schedule="cosine", warm_start=True)
    seen = []
    step = learner.optimizer.step
    learner.optimizer.step = lambda: (seen.append(learner.optimizer.param_groups[0]["lr"]), step())
    for it in range(2):  # every fit starts again from lr (warm restarts)
        learner.fit(data, torch.Generator().manual_seed(it))
    assert len(seen) == 80
    for fit in (seen[:40], seen[40:]):
        assert fit[0] == pytest.approx(0.01) and fit[20] == pytest.approx(0.005) and 0 < fit[-1] < 1e-4
        assert all(a > b for a, b in zip(fit, fit[1:]))  # strictly decreasing within a fit
    learner.cfg = learner.cfg.model_copy(update={"lr_schedule": "constant"})
    assert {learner.lr_at(s, 40) for s in range(40)} == {0.01}


def test_lr_decay_lowers_each_fits_starting_rate_and_resumes_at_the_next():
    """policy.lr_decay=g: fit i starts from lr * g^(i-1) and anneals to 0 within it; a learner resumed from a
    checkpoint of fit 2 starts its next fit from lr * g^2, as the uninterrupted one does."""
    data, _ = linear_expert_data(300)
    keys = dict(hidden=[16], activation="relu", loss="mse", lr=0.01, batch_size=50, gradient_steps=10, epochs=0,
                lr_schedule="cosine", warm_start=True, lr_decay=0.5)

    def rates(learner: MLPLearner, fits: range) -> list[float]:
        seen, step = [], learner.optimizer.step
        learner.optimizer.step = lambda: (seen.append(learner.optimizer.param_groups[0]["lr"]), step())
        for it in fits:
            learner.fit(data, torch.Generator().manual_seed(it))
        return seen[::10]  # each fit's first rate

    learner = mlp_learner(**keys)
    assert rates(learner, range(2)) == pytest.approx([0.01, 0.005])
    resumed = mlp_learner(**keys)
    resumed.load_state_dict(copy.deepcopy(learner.state_dict()))
    assert rates(resumed, range(2, 3)) == rates(learner, range(2, 3)) == pytest.approx([0.0025])
    np.testing.assert_array_equal(resumed.act(data.obs[:7]), learner.act(data.obs[:7]))


def test_ema_acts_with_the_moving_average_of_the_weights_and_resumes_with_it():
    """policy.ema=d: the fit's iterates are unchanged, the learner acts with theta_avg <- d_t theta_avg + (1 - d_t)
    theta_t, d_t = min(d, (1 + t) / (10 + t)) (from the weights at the first fit), and its checkpoint holds the average
    and t, so a resumed learner averages on exactly as the uninterrupted one."""
    data, _ = linear_expert_data(300)
    keys = dict(hidden=[16], activation="relu", loss="mse", lr=0.01, batch_size=50, gradient_steps=20, epochs=0,
                lr_schedule="constant", warm_start=True)

    def fitted(ema: float) -> tuple[MLPLearner, list[list[torch.Tensor]]]:
        torch.manual_seed(0)
        learner = mlp_learner(**keys, ema=ema)
        iterates = [[p.detach().clone() for p in learner.policy.net.parameters()]]
        step = learner.optimizer.step
        learner.optimizer.step = lambda: (step(), iterates.append([p.detach().clone()
                                                                   for p in learner.policy.net.parameters()]))
        for it in range(2):
            learner.fit(data, torch.Generator().manual_seed(it))
        return learner, iterates

    plain, plain_iterates = fitted(0.0)
    averaged, iterates = fitted(0.95)
    assert plain.averaged is None and "averaged" not in plain.state_dict()
    for a, b in zip(plain_iterates[-1], iterates[-1]):
        assert torch.equal(a, b)  # the average does not touch the fit
    expected = iterates[0]
    for t, weights in enumerate(iterates[1:]):  # 40 updates: the warm-up's decay reaches 0.95 only at t = 170
        decay = min(0.95, (1 + t) / (10 + t))
        expected = [decay * e + (1 - decay) * w for e, w in zip(expected, weights)]
    for got, want in zip(averaged.averaged.net.parameters(), expected):
        torch.testing.assert_close(got, want)
    obs = data.obs[:7]
    assert not np.allclose(averaged.act(obs), plain.act(obs))
    np.testing.assert_array_equal(averaged.act(obs), averaged.averaged.act(obs))
    resumed = mlp_learner(**keys, ema=0.95)
    resumed.load_state_dict(copy.deepcopy(averaged.state_dict()))  # as from checkpoint.pt: no tensor shared
    np.testing.assert_array_equal(resumed.act(obs), averaged.act(obs))
    for learner in (resumed, averaged):
        learner.fit(data, torch.Generator().manual_seed(2))
    np.testing.assert_array_equal(resumed.act(obs), averaged.act(obs))  # the same decays after the resume
    assert set(averaged.policy_state_dict()) == set(plain.policy_state_dict())


def test_chunks_cover_every_row_once_and_at_least_one_slice():
    from dagger.policy.fitting import PREDICT_CHUNK, PREDICT_NUMBERS, chunks

    rows, wide = np.arange(10), PREDICT_NUMBERS // 4  # rows this wide (camera frames) go 4 at a time
    assert np.array_equal(np.concatenate([rows[part] for part in chunks(10, wide)]), rows)
    assert chunks(10, wide) == [slice(0, 4), slice(4, 8), slice(8, 12)]
    assert chunks(0, wide) == [slice(0, 4)]  # an empty input still makes one (empty) prediction
    assert chunks(10**6, 17)[0] == slice(0, PREDICT_CHUNK)  # vectors: PREDICT_CHUNK rows at a time
