"""tg.Generator against torch.Generator's API (seeds, state, errors), and `generator=` everywhere the
project draws random numbers: the draws are NumPy's PCG64 seeded by hand, never the global generator's."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cnn as tg
import tinygrad_cnn.utils.data as data


def test_seeds_like_torch():
    torch = pytest.importorskip("torch")
    g = tg.Generator()
    assert g.initial_seed() == torch.Generator().initial_seed() == 67280421310721
    assert str(g.device) == str(torch.Generator().device) == "cpu"
    assert g.manual_seed(5) is g and g.initial_seed() == 5
    for seed in (-1, -2 ** 63, 2 ** 64 - 1, 0):
        assert tg.Generator().manual_seed(seed).initial_seed() == torch.Generator().manual_seed(seed).initial_seed()
    fresh = g.seed()
    assert 0 <= fresh < 2 ** 64 and g.initial_seed() == fresh and g.seed() != fresh


@pytest.mark.parametrize("seed, error", [(1.5, RuntimeError), ("1", RuntimeError), (True, RuntimeError),
                                         (2 ** 64, ValueError), (-2 ** 63 - 1, ValueError)])
def test_manual_seed_errors_like_torch(seed, error):
    torch = pytest.importorskip("torch")
    with pytest.raises(error):
        torch.Generator().manual_seed(seed)
    with pytest.raises(error, match="manual_seed"):
        tg.Generator().manual_seed(seed)


def test_device_errors_like_torch():
    torch = pytest.importorskip("torch")
    assert tg.Generator(device=tg.device("cpu")).device == "cpu"
    for device in ("cuda", "meta"):
        with pytest.raises(RuntimeError):
            torch.Generator(device=device)
        with pytest.raises(RuntimeError, match=device):
            tg.Generator(device=device)


def test_draws_are_pcg64_of_the_seed():
    g = tg.Generator().manual_seed(7)
    expected = np.random.default_rng(7)
    np.testing.assert_array_equal(tg.rand(2, 3, generator=g).numpy(), expected.random((2, 3)).astype(np.float32))
    np.testing.assert_array_equal(tg.randn(4, generator=g, dtype=tg.float64).numpy(), expected.standard_normal(4))
    np.testing.assert_array_equal(tg.randint(0, 10, (5,), generator=g).numpy(), expected.integers(0, 10, 5))
    np.testing.assert_array_equal(tg.randperm(6, generator=g).numpy(), expected.permutation(6))
    np.testing.assert_array_equal(tg.normal(1.0, 2.0, (3,), generator=g).numpy(),
                                  expected.normal(1.0, 2.0, 3).astype(np.float32))
    like = tg.zeros(2, dtype=tg.float64)
    np.testing.assert_array_equal(tg.rand_like(like, generator=g).numpy(), expected.random(2))
    np.testing.assert_array_equal(tg.randn_like(like, generator=g).numpy(), expected.standard_normal(2))


def test_a_generator_leaves_the_global_one_alone():
    tg.manual_seed(0)
    before = tg.rng.get_generator().bit_generator.state
    tg.rand(3, generator=tg.Generator())
    tg.rand(3, generator=np.random.default_rng(1))  # NumPy generators are accepted too
    assert tg.rng.get_generator().bit_generator.state == before


def test_state_round_trip_and_save(tmp_path):
    g = tg.Generator().manual_seed(3)
    tg.rand(5, generator=g)
    tg.randn(1, generator=g)  # a normal draw may leave half a 64-bit draw buffered: it is part of the state
    state = g.get_state()
    assert state.dtype == tg.uint8 and state.ndim == 1
    after = tg.rand(4, generator=g).numpy()
    g.manual_seed(99)
    assert g.set_state(state) is g and g.initial_seed() == 3  # the seed comes back too, as in PyTorch
    np.testing.assert_array_equal(tg.rand(4, generator=g).numpy(), after)
    tg.save(state, tmp_path / "rng.pt")
    other = tg.Generator().set_state(tg.load(tmp_path / "rng.pt"))
    np.testing.assert_array_equal(tg.rand(4, generator=other).numpy(), after)


def test_set_state_errors_like_torch():
    torch = pytest.importorskip("torch")
    for bad, error in (([1, 2], TypeError), (np.zeros(3, np.uint8), TypeError)):
        with pytest.raises(error):
            torch.Generator().set_state(bad)
        with pytest.raises(error, match="set_state"):
            tg.Generator().set_state(bad)
    with pytest.raises(RuntimeError):
        torch.Generator().set_state(torch.zeros(3, dtype=torch.uint8))
    with pytest.raises(RuntimeError, match=r"set_state.*\(3,\)"):
        tg.Generator().set_state(tg.zeros(3, dtype=tg.uint8))
    with pytest.raises(RuntimeError, match="float32"):
        tg.Generator().set_state(tg.zeros(tg.Generator().get_state().shape[0]))


def test_data_functions_take_a_generator():
    """Samplers, random_split and the DataLoader draw from a Generator as from NumPy's PCG64 of its seed."""
    g = tg.Generator().manual_seed(4)
    assert list(data.RandomSampler(range(8), generator=g)) == np.random.default_rng(4).permutation(8).tolist()
    expected = np.random.default_rng(5).permutation(10).tolist()
    assert [s.indices for s in data.random_split(range(10), [6, 4], generator=g.manual_seed(5))] == \
        [expected[:6], expected[6:]]
    assert list(data.SubsetRandomSampler([10, 20, 30], generator=g.manual_seed(6))) == \
        [[10, 20, 30][i] for i in np.random.default_rng(6).permutation(3)]
    dataset = data.TensorDataset(np.arange(10))

    def epoch(loader):
        return [i for (y,) in loader for i in y.tolist()]

    loader = data.DataLoader(dataset, batch_size=3, shuffle=True, generator=g.manual_seed(8))
    assert loader.generator is g
    numpy_loader = data.DataLoader(dataset, batch_size=3, shuffle=True, generator=np.random.default_rng(8))
    assert [epoch(loader) for _ in range(2)] == [epoch(numpy_loader) for _ in range(2)]
    state = loader.state_dict()
    after = epoch(loader)
    g.manual_seed(123)  # scrambled...
    loader.load_state_dict(state)  # ...and restored with the loader
    assert epoch(loader) == after


def test_torch_generator_is_rejected():
    torch = pytest.importorskip("torch")
    for call in (lambda g: tg.rand(2, generator=g), lambda g: data.RandomSampler(range(3), generator=g),
                 lambda g: data.DataLoader(data.TensorDataset(np.arange(3)), generator=g)):
        with pytest.raises(TypeError, match="numpy.random.Generator"):
            call(torch.Generator())
