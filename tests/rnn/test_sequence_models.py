import pytest
import torch
from safetensors.torch import load_file, save_file

from metashot.rnn import MODELS, AddingTask, FrequencyTask


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("task", [FrequencyTask(sampling="async"), AddingTask(min_length=12, max_length=16)],
                         ids=["frequency", "adding"])
def test_every_model_gives_one_output_per_sequence_and_trains_every_parameter(name, task, tmp_path):
    torch.manual_seed(0)
    model = MODELS[name](input_size=task.input_size, hidden_size=8, output_size=task.output_size, r_on=0.5,
                         max_steps=task.max_steps)
    batch = task.batch(5, torch.Generator().manual_seed(0))
    out = model(batch.inputs, batch.times, batch.lengths)
    assert out.shape == (5, task.output_size)
    out.square().sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "m.safetensors"))
    clone = MODELS[name](input_size=task.input_size, hidden_size=8, output_size=task.output_size, r_on=0.5,
                         max_steps=task.max_steps)
    clone.load_state_dict(load_file(str(tmp_path / "m.safetensors")))
    model.eval()
    clone.eval()
    torch.testing.assert_close(clone(batch.inputs, batch.times, batch.lengths), model(batch.inputs, batch.times, batch.lengths))


@pytest.mark.parametrize("name", list(MODELS))
def test_padding_does_not_change_a_sequence_s_prediction(name):
    torch.manual_seed(1)
    task = FrequencyTask(sampling="async")
    model = MODELS[name](input_size=1, hidden_size=8, output_size=2, max_steps=task.max_steps).eval()
    batch = task.batch(4, torch.Generator().manual_seed(2))
    full = model(batch.inputs, batch.times, batch.lengths)
    for b in range(4):
        n = int(batch.lengths[b])
        alone = model(batch.inputs[b : b + 1, :n], batch.times[b : b + 1, :n], batch.lengths[b : b + 1])
        torch.testing.assert_close(alone, full[b : b + 1])
