import pytest
import torch

from metashot.rnn.bn_lstm import _StepBatchNorm, recalibrate_batch_norm
from metashot.rnn.config import ModelConfig, TaskConfig, TrainConfig
from metashot.rnn.evaluate import build_model, evaluate_model
from metashot.rnn.evaluate import test_set as make_test_set
from metashot.rnn.sequence_models import BNLSTMModel


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


def test_recalibration_replaces_the_running_statistics_by_the_plain_average_of_the_batches():
    torch.manual_seed(0)
    model = BNLSTMModel(input_size=1, hidden_size=6, output_size=2, max_steps=5)  # + the timestamp input
    batches = []
    for _ in range(3):
        lengths = torch.full((8,), 5)
        batches.append((torch.randn(8, 5, 1), torch.arange(5.0).expand(8, 5).clone(), lengths))
    seen = []
    norm = model.rnn.bn_ih
    hook = norm.register_forward_hook(lambda m, args, out: seen.append(args[0].mean(0)) if args[1] == 0 else None)
    model.eval()
    assert recalibrate_batch_norm(model, batches) == 3
    hook.remove()
    assert not model.training  # the mode is restored
    torch.testing.assert_close(norm.running_mean[0], torch.stack(seen).mean(0))
    assert norm._recalibration_counts is None


def test_evaluation_recalibrates_a_copy_and_leaves_the_callers_model_alone(tmp_path):
    config = TrainConfig(task=TaskConfig(sampling="standard"), model=ModelConfig(model="bnlstm", hidden_size=8),
                         epochs=1, epoch_size=16, batch_size=8, eval_examples=16)
    model = build_model(config)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = evaluate_model(model, config, make_test_set(config, 16))
    assert 0.0 <= result["accuracy"] <= 1.0
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key])


def test_models_without_batch_norm_are_not_run_by_recalibration():
    model = torch.nn.Linear(2, 2)
    assert recalibrate_batch_norm(model, iter(())) == 0
