"""Which tokens a chem checkpoint gets wrong (teacher forced from the latent mean, held-out molecules).

    python scripts/chem/token_errors.py RUN_OR_CHECKPOINT [--molecules 500]

Counts each molecule's tokens plus its end marker (not the padding): the "molecule token accuracy"
(90.1% for the session-4 SMILES run at epoch 4.8, when its all-positions figure was 96.4%) and the
most frequent wrong tokens, stereo tokens ([C@@H], [C@H], /, \\) separately.
"""

from __future__ import annotations

import collections

import torch
from _held_out import load_held_out


def main() -> None:
    model, vocab, _data, x = load_held_out(__doc__.splitlines()[0], default_molecules=500)
    with torch.no_grad():
        mu, _ = model.encode(x)
        wrong = model.decode_logits(mu, x).argmax(-1) != x  # (n, max_length)
    ends = (x != 0).sum(1)
    errors: collections.Counter[str] = collections.Counter()
    seen: collections.Counter[str] = collections.Counter()
    clean = 0
    for i in range(len(x)):
        row = range(int(ends[i]) + 1)  # tokens + end marker
        clean += not any(bool(wrong[i, t]) for t in row)
        for t in row:
            token = vocab.tokens[int(x[i, t])]
            seen[token] += 1
            errors[token] += bool(wrong[i, t])
    print(f"molecule token accuracy: {1 - sum(errors.values()) / sum(seen.values()):.4f}")
    print(f"molecules without a teacher-forced error: {clean / len(x):.3f}; errors per molecule: "
          f"{sum(errors.values()) / len(x):.2f}")
    for token, count in errors.most_common(15):
        print(f"{token!r:10} {count:5d} of {seen[token]:5d}  ({count / seen[token]:.3f})")
    stereo = sum(c for t, c in errors.items() if "@" in t or t in ("/", "\\"))
    print(f"stereo-token errors: {stereo} of {sum(errors.values())}")


if __name__ == "__main__":
    main()
