import pytest
import torch

from metashot.errors import UsageError
from metashot.rnn.tasks import SAMPLINGS, AddingTask, FrequencyTask, fixed_test_set, list_tasks, make_task


@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_frequency_batches_are_reproducible_from_the_seed(sampling):
    task = FrequencyTask(sampling=sampling)
    a = task.batch(8, torch.Generator().manual_seed(7))
    b = task.batch(8, torch.Generator().manual_seed(7))
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    c = task.batch(8, torch.Generator().manual_seed(8))
    assert not torch.equal(a.targets, c.targets) or not torch.equal(a.lengths, c.lengths)


@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_frequency_sampling_intervals_and_durations(sampling):
    batch = FrequencyTask(sampling=sampling).batch(64, torch.Generator().manual_seed(0))
    steps = batch.inputs.shape[1]
    assert batch.inputs.shape == (64, steps, 1) and batch.times.shape == (64, steps)
    assert int(batch.lengths.max()) == steps
    assert (batch.times.diff(dim=1) >= 0).all()  # sorted, padding repeats the last time
    assert batch.times.min() >= 0 and batch.times.max() <= 125.0 + 1e-4
    if sampling == "high_resolution":
        torch.testing.assert_close(batch.times[:, 1] - batch.times[:, 0], torch.full((64,), 0.1))
        assert 150 <= batch.lengths.min() and batch.lengths.max() <= 1250
    else:
        assert 15 <= batch.lengths.min() and batch.lengths.max() <= 125
    if sampling == "standard":
        torch.testing.assert_close(batch.times[:, 1] - batch.times[:, 0], torch.ones(64))
    if sampling == "async":
        gaps = batch.times.diff(dim=1)
        assert gaps.std() > 0.3  # irregular, unlike the 1 ms grid


def test_frequency_labels_follow_the_period_and_half_are_positive():
    task = FrequencyTask(sampling="standard")
    batch = task.batch(4000, torch.Generator().manual_seed(1))
    positive = batch.targets.float().mean().item()
    # 50% forced to [5, 6] ms, plus ~4% of the log-uniform rest falls there: expect ~0.52.
    assert 0.49 < positive < 0.55
    # A 5-6 ms sine crosses zero every 2.5-3 ms: check one sequence's zero crossings.
    x = batch.inputs[batch.targets == 1][0, :, 0]
    n = int(batch.lengths[batch.targets == 1][0])
    crossings = ((x[: n - 1] * x[1:n]) < 0).sum().item()
    assert abs(crossings - n / 2.75) <= 0.2 * n / 2.75 + 2


def test_adding_task_target_is_the_sum_of_the_two_marked_values():
    batch = AddingTask(min_length=20, max_length=30).batch(16, torch.Generator().manual_seed(0))
    values, markers = batch.inputs[..., 0], batch.inputs[..., 1]
    assert (markers.sum(1) == 2).all()
    torch.testing.assert_close((values * markers).sum(1), batch.targets)
    for b, n in enumerate(batch.lengths.tolist()):
        first, second = markers[b].nonzero()[:, 0].tolist()
        assert first < n // 2 <= second < n


def test_fixed_test_set_is_deterministic_and_registry_is_enumerable():
    task = make_task("frequency", sampling="async")
    a, b = fixed_test_set(task, 70, seed=3, batch_size=32), fixed_test_set(task, 70, seed=3, batch_size=32)
    assert [len(x.targets) for x in a] == [32, 32, 6]
    assert all(torch.equal(x.inputs, y.inputs) for x, y in zip(a, b))
    assert list_tasks() == ["frequency", "adding"]
    with pytest.raises(UsageError, match="sampling"):
        FrequencyTask(sampling="weekly")
