"""Every expert in experts/manifest.yaml is there, intact, and as good as the manifest says."""
import gymnasium as gym
import numpy as np
import pytest

from dagger.config import PROJECT_ROOT
from dagger.expert.expert import ExpertConfig, load_expert
from dagger.expert.publishing import EVAL_SEED, episode_returns, load_manifest
from dagger.files import sha256

EXPERTS = PROJECT_ROOT / "experts"
MANIFEST = load_manifest(EXPERTS)


def test_manifest_lists_the_cheap_test_expert():
    assert "sac/InvertedPendulum-v5" in MANIFEST


@pytest.mark.parametrize("key", sorted(MANIFEST))
def test_shipped_expert_matches_its_manifest(key):
    entry = MANIFEST[key]
    path = EXPERTS / entry["file"]
    assert sha256(path) == entry["sha256"], f"{path} changed since it was recorded"
    assert path.stat().st_size <= 5_000_000
    env = gym.make(entry["env_id"])
    cfg = ExpertConfig(algo=entry["algo"], path=str(path), deterministic=True)
    expert = load_expert(cfg, entry["env_id"], env)
    # The manifest's first five episodes: their mean lies within 3 standard errors of the manifest's mean, a band
    # that fails an expert that falls where it did not (Ant: 71% of its return, where one episode within 3 std
    # of the mean let 36% pass)
    scores = episode_returns(env, expert.act, episodes=5, seed=EVAL_SEED)
    floor = entry["eval_return_mean"] - 3 * entry["eval_return_std"] / np.sqrt(len(scores))
    assert np.mean(scores) >= floor, f"{key}: five episodes scored {np.round(scores, 1)}, the band starts at {floor:.1f}"
    assert entry["eval_return_mean"] > entry["random_return_mean"]


def test_the_fixed_references_are_what_a_fresh_measurement_gives():
    """The normaliser of every shipped-expert run (the manifest's 100-episode reference), measured again on the cheap
    task with its own seeds: the random policy's returns come from numpy and MuJoCo alone, so they match to the
    cent on any CPU, and the pendulum expert balances for all 1,000 steps of every episode."""
    from dagger.expert.references import entry_reference

    entry = MANIFEST["sac/InvertedPendulum-v5"]
    assert entry_reference(entry, EXPERTS) == entry["reference"]
