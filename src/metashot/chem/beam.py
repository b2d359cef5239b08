"""Beam-search decoding of the SMILES VAE: the most probable strings for a latent point.

Greedy decoding (the paper's) takes the most probable token at every step, which need not give the
most probable *string* ``argmax_x p(x | z)``. Beam search keeps the ``width`` most probable partial
strings per point at every step (their log-probability summed over tokens, the end token included)
and returns them best first, so ``width=1`` is exactly greedy decoding. A finished string (one that
emitted the end token) keeps its score and competes with the unfinished ones until the end.

The masks of greedy decoding apply unchanged (:meth:`SmilesVAE.decoder_step`): never BOS, no empty
string, ``first_token_mask``, and the syntax constraint when given; probabilities are renormalised
over the allowed tokens.
"""

from __future__ import annotations

import torch
from torch import Tensor

from metashot.chem.grammar import SmilesSyntax
from metashot.chem.vae import SmilesVAE
from metashot.errors import UsageError

__all__ = ["beam_search"]


@torch.no_grad()
def beam_search(
    model: SmilesVAE, z: Tensor, *, width: int, max_length: int | None = None,
    first_token_mask: Tensor | None = None, syntax: SmilesSyntax | None = None,
) -> tuple[Tensor, Tensor]:
    """Beam search from ``z`` ``(batch, latent_dim)``.

    Returns:
        ids ``(batch, width, max_length)`` (0-padded after each string's end token) and their
        log-probabilities ``(batch, width)`` in nats, best first. A beam that could not be filled (fewer
        than ``width`` allowed strings) has log-probability ``-inf``.
    """
    if width < 1:
        raise UsageError(f"beam width must be >= 1, got {width}")
    length = max_length or model.config.max_length
    batch, device = z.shape[0], z.device
    rows = batch * width
    h_z = model.decoder_dense(z).repeat_interleave(width, dim=0).unsqueeze(1)  # (rows, 1, decoder_hidden)
    token = torch.ones(rows, 1, dtype=torch.long, device=device)  # BOS
    hidden: Tensor | None = None
    out = torch.zeros(rows, length, dtype=torch.long, device=device)
    score = torch.full((batch, width), float("-inf"), device=device)
    score[:, 0] = 0.0  # one live beam per point at the start: the others would duplicate it
    finished = torch.zeros(rows, dtype=torch.bool, device=device)
    state = syntax.start(rows, device) if syntax is not None else None
    vocab = model.vocab_size
    ended = torch.full((vocab,), float("-inf"), device=device)
    ended[0] = 0.0  # a finished string can only continue with padding, at no cost
    base = (torch.arange(batch, device=device) * width).unsqueeze(1)  # (batch, 1) first row of each point
    for t in range(length):
        logits, hidden = model.decoder_step(h_z, token, hidden, first=t == 0, first_token_mask=first_token_mask,
                                            syntax=syntax, state=state)
        logp = torch.log_softmax(logits, dim=-1)  # (rows, vocab); -inf where masked
        logp = torch.where(finished.unsqueeze(1), ended, logp)
        total = (score.reshape(rows, 1) + logp).reshape(batch, width * vocab)
        score, flat = total.topk(width, dim=1)  # (batch, width), best first
        parent = (base + flat // vocab).reshape(rows)  # row each new beam extends
        nxt = (flat % vocab).reshape(rows)
        out = out[parent]
        out[:, t] = nxt
        hidden = hidden[:, parent]
        was_finished = finished[parent]
        finished = was_finished | (nxt == 0)
        if bool(finished.all()):
            break
        if state is not None:
            state = syntax.advance(state.select(parent), nxt)
        token = nxt.unsqueeze(1)
    return out.reshape(batch, width, length), score
