import numpy as np

from dagger.data import Dataset


def test_aggregation_keeps_every_pair_in_order_across_growth(tmp_path):
    data = Dataset(obs_dim=3, act_dim=2, capacity=4)
    rng = np.random.default_rng(0)
    batches = [(rng.normal(size=(n, 3)), rng.normal(size=(n, 2))) for n in (3, 5, 1, 40)]
    for obs, acts in batches:
        data.add(obs, acts)
    assert len(data) == 49
    np.testing.assert_allclose(data.obs, np.concatenate([b[0] for b in batches]).astype(np.float32))
    np.testing.assert_allclose(data.acts, np.concatenate([b[1] for b in batches]).astype(np.float32))
    assert data.obs.flags.c_contiguous

    data.save(tmp_path / "d.npz")
    loaded = Dataset.load(tmp_path / "d.npz")
    np.testing.assert_array_equal(loaded.obs, data.obs)
    np.testing.assert_array_equal(loaded.acts, data.acts)


def test_mismatched_lengths_are_refused():
    data = Dataset(2, 1)
    try:
        data.add(np.zeros((3, 2)), np.zeros((2, 1)))
    except ValueError as err:
        assert "3 observations but 2 actions" in str(err)
    else:
        raise AssertionError("accepted mismatched batch")
