import pytest
import torch

from metashot.rnn.bn_lstm import _StepBatchNorm


def test_a_step_with_too_few_real_rows_uses_and_keeps_the_running_statistics():
    bn = _StepBatchNorm(3, max_stat_steps=4, min_rows=4).train()
    bn.running_mean[2] = torch.tensor([1.0, 2.0, 3.0])
    bn.running_var[2] = torch.tensor([4.0, 4.0, 4.0])
    x = torch.randn(8, 3)
    mask = torch.zeros(8, 1)
    mask[0] = 1.0  # one real row: its batch variance would be 0
    before = (bn.running_mean.clone(), bn.running_var.clone())
    out = bn(x, 2, mask)
    expected = (x - bn.running_mean[2]) * torch.rsqrt(bn.running_var[2] + bn.eps) * bn.weight + bn.bias
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(bn.running_mean, before[0])
    torch.testing.assert_close(bn.running_var, before[1])


def test_running_statistics_converge_to_the_unbiased_moments_of_the_real_rows():
    bn = _StepBatchNorm(2, max_stat_steps=1, momentum=0.5).train()
    x = torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 8.0], [6.0, 0.0], [100.0, -100.0]])
    mask = torch.tensor([[1.0], [1.0], [1.0], [1.0], [0.0]])  # the last row is padding
    for _ in range(60):
        bn(x, 0, mask)
    real = x[:4]
    torch.testing.assert_close(bn.running_mean[0], real.mean(0))
    torch.testing.assert_close(bn.running_var[0], real.var(0, unbiased=True))


def test_min_rows_below_two_is_refused():
    with pytest.raises(ValueError, match="min_rows"):
        _StepBatchNorm(2, max_stat_steps=1, min_rows=1)
