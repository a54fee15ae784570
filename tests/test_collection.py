"""The budget rule of the collector (dagger.rollout): whole episodes of pi_i from a reset (Algorithm 3.1) by
default, episodes carried over across iterations as an option."""
import numpy as np
import pytest

from dagger.config import ConfigError
from dagger.schemas import parse
from dagger.envs import EnvConfig
from dagger.rollout import Collector, envs_in_parallel
from dagger.schedules import BetaSchedule, ScheduleConfig
from dagger.supervisors.beta_mixture import BetaMixture
from tests.conftest import compose

EPISODE = 60  # Hopper with a 60-step limit: random actions fall before it or are cut by it


def hopper(num_envs: int, collection: str) -> Collector:
    env = parse(EnvConfig, {**compose("env=hopper").env, "max_episode_steps": EPISODE}, "env.")
    return Collector(env, num_envs, seed=3, collection=collection)


def random_actions(seed: int):
    rng = np.random.default_rng(seed)
    return lambda obs: rng.uniform(-1, 1, (len(obs), 3)).astype(np.float32)


def collect(collector: Collector, steps: int, iteration: int) -> dict[str, np.ndarray]:
    expert = BetaMixture(BetaSchedule("constant", 1.0))  # the "expert" (random actions) drives: no learner needed
    return collector.collect(expert, random_actions(iteration), None, steps, np.random.default_rng(iteration),
                             iteration).transitions


def episodes(seen: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Row indices of each episode of each env, in collection order."""
    out = []
    for env in np.unique(seen["env"]):
        rows, start = np.flatnonzero(seen["env"] == env), 0
        ends = np.flatnonzero(seen["terminated"][rows] | seen["truncated"][rows])
        for end in ends:
            out.append(rows[start:end + 1])
            start = end + 1
        assert start == len(rows), f"env {env}: steps after its last episode end"
    return out


def is_reset_state(collector: Collector, obs: np.ndarray) -> bool:
    """Hopper's reset adds U(-0.005, 0.005) to its initial position (less the x coordinate) and zero velocity."""
    sim = collector.venv.envs[0].unwrapped
    start = np.concatenate([sim.init_qpos[1:], sim.init_qvel])
    return bool(np.all(np.abs(obs - start) <= 0.005 + 1e-6))


def test_only_as_many_envs_as_whole_episodes_fit_the_budget():
    assert envs_in_parallel("episodes", 8, 1000, 1000) == 1  # the default: one whole 1,000-step episode
    assert envs_in_parallel("episodes", 8, 4000, 1000) == 4
    assert envs_in_parallel("episodes", 8, 200, 1000) == 1  # a budget under one episode still runs one env
    assert envs_in_parallel("episodes", 8, 100_000, 1000) == 8  # never more than env.num_envs
    assert envs_in_parallel("carry_over", 8, 200, 1000) == 8


def test_every_iteration_labels_whole_episodes_of_its_own_policy_from_a_reset():
    collector = hopper(envs_in_parallel("episodes", 4, 2 * EPISODE + 7, EPISODE), "episodes")
    assert collector.num_envs == 2
    firsts = []
    for iteration in (1, 2):
        seen = collect(collector, 2 * EPISODE + 7, iteration)  # an odd budget: the last vector step is partial
        assert len(seen["obs"]) == 2 * EPISODE + 7
        found = episodes(seen)  # every env's record ends with an episode end: the budget's cut is truncated
        assert sum(len(e) for e in found) == len(seen["obs"])
        assert all(len(e) <= EPISODE for e in found)
        assert all(is_reset_state(collector, seen["obs"][e[0]]) for e in found)  # each starts from a reset
        assert any(seen["terminated"][e[-1]] for e in found)  # random actions fall ...
        cut = [e for e in found if seen["truncated"][e[-1]] and len(e) < EPISODE]
        assert cut  # ... and an episode the budget cuts is marked truncated (an env may also fall on its last step)
        firsts.append(seen["obs"][[e[0] for e in found]])
    assert not np.allclose(firsts[0][0], firsts[1][0])  # iteration 2 draws new resets


def test_carry_over_continues_the_episodes_across_iterations():
    collector = hopper(4, "carry_over")
    first, second = collect(collector, 40, 1), collect(collector, 40, 2)
    last = {env: np.flatnonzero(first["env"] == env)[-1] for env in range(4)}
    for env in range(4):
        head = np.flatnonzero(second["env"] == env)[0]
        ended = first["terminated"][last[env]] or first["truncated"][last[env]]
        if not ended:  # the episode goes on where iteration 1 left it, and is not marked as cut
            np.testing.assert_array_equal(second["obs"][head], first["next_obs"][last[env]])
    assert not first["truncated"].any()  # 10 steps per env, far from the limit: nothing is cut


def test_the_collection_key_is_checked():
    schedule = dict(compose().schedule)
    assert parse(ScheduleConfig, schedule, "schedule.").collection == "episodes"
    with pytest.raises(ConfigError, match="schedule.collection"):
        parse(ScheduleConfig, {**schedule, "collection": "slices"}, "schedule.")


def test_a_runs_dataset_holds_whole_episodes_of_each_iteration_from_its_own_seeded_reset(tmp_path):
    """End to end, in dataset.npz: iteration i's record is episodes that each start from a reset and end (fall,
    time limit or the budget's cut), the first from the reset seeded by (seed, i)."""
    import gymnasium as gym

    from tests.conftest import QUICK, run_in_process

    quick = [key for key in QUICK if not key.startswith("env=")]
    run_in_process(tmp_path / "run", "env=hopper", *quick, f"env.max_episode_steps={EPISODE}",
                   "schedule.rollout_steps=150", "schedule.iterations=2", "eval.episodes=2", "logger=none", "seed=3")
    with np.load(tmp_path / "run" / "dataset.npz") as f:
        t = {name: f[f"transition_{name}"] for name in ("state", "env", "iteration", "terminated", "truncated")}
    collector = hopper(1, "episodes")
    env = gym.make("Hopper-v5")
    for i in (1, 2):
        seen = {name: column[t["iteration"] == i] for name, column in t.items()}
        found = episodes(seen)
        assert sum(len(e) for e in found) == len(seen["state"]) == 150
        assert all(is_reset_state(collector, seen["state"][e[0]]) for e in found)
        seed = int(np.random.SeedSequence(3, spawn_key=(i,)).generate_state(1)[0])
        np.testing.assert_allclose(seen["state"][0], env.reset(seed=seed)[0], rtol=0, atol=1e-6)  # float32 in D
    collector.close()


def test_the_evaluator_returns_each_episodes_return_and_steps_no_env_after_its_end():
    """Each return is that of the env's episode run alone from its seed (seed + i), and an env whose episode ended is
    not stepped again while the others run (random actions on Hopper fall at different times)."""
    from dagger.rollout import Evaluator

    env = parse(EnvConfig, {**compose("env=hopper").env, "max_episode_steps": EPISODE}, "env.")
    evaluator = Evaluator(env, episodes=4, seed=5)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (EPISODE, 4, 3))
    seen = []

    def act(obs):  # the same action sequence per env whatever the others do
        seen.append(obs.copy())
        return actions[len(seen) - 1]

    steps = [0] * 4

    def counted(i, step):
        def counting(action):
            steps[i] += 1
            return step(action)
        return counting

    for i, sub in enumerate(evaluator.venv.envs):
        sub.step = counted(i, sub.step)
    returns = evaluator.returns(act)
    alone = []
    for i in range(4):
        single = parse(EnvConfig, {**compose("env=hopper").env, "max_episode_steps": EPISODE}, "env.")
        solo = Evaluator(single, episodes=1, seed=5 + i)
        k = iter(range(EPISODE))
        alone.append(solo.returns(lambda obs: actions[next(k)][i:i + 1])[0])
        assert steps[i] == next(k), f"env {i} was stepped after its episode ended"
    np.testing.assert_array_equal(returns, alone)
    assert len(set(steps)) > 1 and len(seen) == max(steps)
