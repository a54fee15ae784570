"""Every expert in experts/manifest.yaml is there, intact, and as good as the manifest says."""
import gymnasium as gym
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
    (score,) = episode_returns(env, expert.act, episodes=1, seed=EVAL_SEED)  # the manifest's first episode
    floor = entry["eval_return_mean"] - 3 * entry["eval_return_std"]
    assert score >= floor, f"{key}: one episode scored {score:.1f}, manifest band starts at {floor:.1f}"
    assert entry["eval_return_mean"] > entry["random_return_mean"]
