import numpy as np
import pytest

from dagger.data import Dataset, Transitions


def steps(rng: np.random.Generator, n: int, labelled: np.ndarray) -> dict[str, np.ndarray]:
    """n visited steps of a 3-wide view and 2-wide actions, `labelled` where the expert labelled them."""
    obs = rng.normal(size=(n, 3))
    return {"obs": obs, "acts": rng.normal(size=(n, 2)), "reward": rng.normal(size=n), "next_obs": obs + 1,
            "terminated": np.zeros(n, bool), "truncated": np.zeros(n, bool), "learner": ~labelled,
            "label": np.where(labelled[:, None], rng.normal(size=(n, 2)), np.nan), "labelled": labelled,
            "env": np.zeros(n, np.int32)}


def test_D_is_the_labelled_steps_of_the_record_in_order_across_growth(tmp_path):
    data = Dataset(obs_dim=3, act_dim=2, capacity=4)
    rng = np.random.default_rng(0)
    batches = [steps(rng, n, rng.random(n) < 0.6) for n in (3, 5, 1, 40)]
    for i, batch in enumerate(batches, start=1):
        data.add(batch, i)
    every = {name: np.concatenate([b[name] for b in batches]) for name in ("obs", "label", "labelled")}
    assert len(data.transitions) == 49 and len(data) == every["labelled"].sum()  # each step kept once
    np.testing.assert_array_equal(data.obs, every["obs"][every["labelled"]].astype(np.float32))
    np.testing.assert_array_equal(data.acts, every["label"][every["labelled"]].astype(np.float32))
    np.testing.assert_array_equal(data.transitions["iteration"], np.repeat([1, 2, 3, 4], [3, 5, 1, 40]))
    assert data.obs.flags.c_contiguous

    data.save(tmp_path / "d.npz")
    loaded = Dataset.load(tmp_path / "d.npz")
    for name in Transitions.FIELDS:
        np.testing.assert_array_equal(loaded.transitions[name], data.transitions[name])
    np.testing.assert_array_equal(loaded.obs, data.obs)
    np.testing.assert_array_equal(loaded.acts, data.acts)
    with np.load(tmp_path / "d.npz") as f:  # dataset.npz keeps its meaning: D's pairs beside the record
        np.testing.assert_array_equal(f["obs"], data.obs)
        np.testing.assert_array_equal(f["acts"], data.acts)


def test_a_file_whose_pairs_are_not_its_labelled_steps_or_that_has_no_record_is_refused(tmp_path):
    data = Dataset(3, 2)
    data.add(steps(np.random.default_rng(0), 10, np.arange(10) % 2 == 0), 1)
    data.save(tmp_path / "d.npz")
    with np.load(tmp_path / "d.npz") as f:
        arrays = dict(f)
    arrays["acts"] = arrays["acts"] + 1
    np.savez(tmp_path / "forged.npz", **arrays)
    with pytest.raises(ValueError, match="not the labelled steps of its transitions"):
        Dataset.load(tmp_path / "forged.npz")
    np.savez(tmp_path / "old.npz", obs=arrays["obs"], acts=arrays["acts"])
    with pytest.raises(ValueError, match="written by an older version"):
        Dataset.load(tmp_path / "old.npz")


def test_mismatched_lengths_are_refused():
    data = Dataset(3, 2)
    batch = steps(np.random.default_rng(0), 3, np.ones(3, bool))
    batch["label"] = batch["label"][:2]
    with pytest.raises(ValueError, match="arrays of different lengths"):
        data.add(batch, 1)
