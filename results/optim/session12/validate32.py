"""Validation score (mean loss over the 100-step horizon, mixed activations) of optimizers on the
first 32 validation problems: the number the meta-batch-2 runs of session 12 select on (`--num-val 32`).

    python results/optim/session12/validate32.py checkpoints/l2l-mnist-mlp-mixed-adam-second-order ...
"""

from __future__ import annotations

import sys
from dataclasses import replace

from metashot.optim.config import preset_for
from metashot.optim.coordinatewise import CoordinatewiseLSTM
from metashot.optim.tasks import make_task
from metashot.optim.train import validate

if __name__ == "__main__":
    config = replace(preset_for("mnist-mlp-mixed"), num_val=32)
    task = make_task("mnist-mlp-mixed")
    for path in sys.argv[1:]:
        print(f"{path}: {validate(CoordinatewiseLSTM.from_pretrained(path), task, config, 'cpu'):.5f}")
