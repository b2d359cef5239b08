"""Matching Networks with full context embeddings (Vinyals et al. 2016).

Paper: https://arxiv.org/abs/1606.04080. Eq. 1-2 (attention kernel), Section 2.1.2 and
Appendix A.1/A.2 (full context embeddings, FCE):

- g(x_i, S) = g'(x_i) + h→_i + h←_i, a bidirectional LSTM over the support embeddings g'(x_i);
- f(x̂, S) = attLSTM(f'(x̂), g(S), K): for k = 1..K,
  ĥ_k, c_k = LSTM(f'(x̂), [h_{k-1}, r_{k-1}], c_{k-1}); h_k = ĥ_k + f'(x̂);
  r_{k-1} = Σ_i softmax_i(h_{k-1} · g(x_i)) g(x_i); f(x̂, S) = h_K.

Deviations from the paper / choices it leaves open:

- The LSTM's recurrent input [h_{k-1}, r_{k-1}] (2D wide) is realised with ``nn.LSTMCell`` taking
  ``cat(f'(x̂), r_{k-1})`` as input and (h_{k-1}, c_{k-1}) as state: the gate pre-activations
  W_x f' + W_r r + W_h h + b are exactly those of an LSTM fed [h, r], and the cell stays D wide.
- h_0 = c_0 = 0, so r_0 is the mean of g(S) (the paper does not say how the state starts).
- ``scale`` multiplies the cosine similarities before the softmax; 1 is the paper. Larger values
  (e.g. 10) let the softmax become confident and train faster; our presets say which they use.
- The support set is fed to the BiLSTM in the episode's order (grouped by class, as sampled).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from metashot.fewshot.embeddings import Conv4, embed_episode, infer_n_way
from metashot.fewshot.functional import attention_readout, matching_log_probs

# --- full context embeddings ------------------------------------------------------------------------


class SupportContext(nn.Module):
    """g(x_i, S) = g'(x_i) + h→_i + h←_i: a bidirectional LSTM over the support set (Appendix A.2)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, batch_first=True, bidirectional=True)

    def forward(self, support: Tensor) -> Tensor:
        """(batch, n_support, dim) -> (batch, n_support, dim)."""
        out, _ = self.lstm(support)  # (batch, n_support, 2 * dim): [forward | backward]
        forward, backward = out.chunk(2, dim=-1)
        return support + forward + backward


class QueryContext(nn.Module):
    """f(x̂, S) = attLSTM(f'(x̂), g(S), K): K read steps of an LSTM attending over g(S) (Appendix A.1)."""

    def __init__(self, dim: int, read_steps: int) -> None:
        super().__init__()
        if read_steps < 1:
            raise ValueError(f"read_steps must be >= 1, got {read_steps}")
        self.cell = nn.LSTMCell(2 * dim, dim)
        self.read_steps = read_steps

    def forward(self, query: Tensor, support: Tensor) -> Tensor:
        """query (batch, n_query, dim), support g(S) (batch, n_support, dim) -> (batch, n_query, dim)."""
        batch, n_query, dim = query.shape
        flat_query = query.reshape(batch * n_query, dim)
        h = torch.zeros_like(flat_query)  # (batch * n_query, dim)
        c = torch.zeros_like(flat_query)
        for _ in range(self.read_steps):
            r = attention_readout(h.view(batch, n_query, dim), support).reshape(batch * n_query, dim)
            h_hat, c = self.cell(torch.cat([flat_query, r], dim=-1), (h, c))
            h = h_hat + flat_query  # skip connection
        return h.view(batch, n_query, dim)


# --- the model --------------------------------------------------------------------------------------


class MatchingNetwork(nn.Module):
    """Matching Network: P(ŷ | x̂, S) = Σ_i a(x̂, x_i) y_i with a cosine-softmax attention.

    Vinyals et al. 2016, https://arxiv.org/abs/1606.04080, Eq. 1-2; FCE in Appendix A. See the module
    docstring for the deviations. The forward pass is a pure function of the episode: no state is
    kept between calls.

    Args:
        embedding: f' = g' (shared, as in the paper); default :class:`Conv4`.
        full_context: use full context embeddings (BiLSTM g, attention-LSTM f).
        read_steps: K, the attention LSTM's processing steps (independent of the support size).
        scale: multiplier of the cosine similarities (1 = paper).
        embedding_dim: output size of ``embedding`` (64 for Conv4 on 28x28).

    Example:
        >>> model = MatchingNetwork(full_context=True, read_steps=5)
        >>> support, labels = torch.rand(5, 1, 28, 28), torch.arange(5)
        >>> model(support, labels, torch.rand(3, 1, 28, 28)).shape
        torch.Size([3, 5])
    """

    def __init__(
        self,
        embedding: nn.Module | None = None,
        *,
        full_context: bool = False,
        read_steps: int = 5,
        scale: float = 1.0,
        embedding_dim: int = 64,
    ) -> None:
        super().__init__()
        self.embedding = embedding if embedding is not None else Conv4()
        self.full_context = full_context
        self.read_steps = read_steps
        self.scale = scale
        self.support_context = SupportContext(embedding_dim) if full_context else None
        self.query_context = QueryContext(embedding_dim, read_steps) if full_context else None

    def embed(self, support_images: Tensor, query_images: Tensor) -> tuple[Tensor, Tensor]:
        """g(S) (batch..., n_support, D) and f(x̂, S) (batch..., n_query, D) for images (..., n, C, H, W)."""
        support, query = embed_episode(self.embedding, support_images, query_images)
        if self.full_context:
            assert self.support_context is not None and self.query_context is not None
            lead = support.shape[:-2]
            s = support.reshape(-1, *support.shape[-2:])  # (batch, n_support, D)
            q = query.reshape(-1, *query.shape[-2:])  # (batch, n_query, D)
            s = self.support_context(s)
            q = self.query_context(q, s)
            support, query = s.reshape(*lead, *s.shape[-2:]), q.reshape(*lead, *q.shape[-2:])
        return support, query

    def forward(
        self, support_images: Tensor, support_labels: Tensor, query_images: Tensor, n_way: int | None = None
    ) -> Tensor:
        """Log-probabilities of the query classes.

        Args:
            support_images: (..., n_support, C, H, W); ``...`` = optional episode batch dimensions.
            support_labels: (..., n_support) int in ``0 .. n_way - 1``.
            query_images: (..., n_query, C, H, W).
            n_way: classes per episode (default: inferred from the labels, which costs a host sync).

        Returns:
            (..., n_query, n_way) log-probabilities.
        """
        n_way = infer_n_way(support_labels, n_way)
        support, query = self.embed(support_images, query_images)
        return matching_log_probs(support, support_labels, query, n_way, scale=self.scale)
