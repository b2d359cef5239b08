"""The SMILES variational autoencoder with a jointly trained property predictor.

Gómez-Bombarelli et al., "Automatic chemical design using a data-driven continuous representation of
molecules" (https://arxiv.org/abs/1610.02415; ACS Cent. Sci. 2018), figure 1 and "Methods":

- encoder: one-hot SMILES ``(batch, vocab, 120)`` -> three 1-D convolutions (9, 9, 10 filters;
  kernels 9, 9, 11; tanh; batch norm) -> flatten -> dense -> mean and log-variance of a 196-d latent;
- decoder: dense from ``z``, repeated over the 120 steps -> three GRU layers of 488 units, teacher
  forced with the previous character -> softmax over the symbols;
- property predictor: an MLP from the latent *mean* to (normalised) logP, QED and SAS.

Deviations from the paper:
    ``encoder_norm="layer"`` (an option; the paper uses batch norm) normalises each molecule on its own.
    With batch norm, length-bucketed training batches (``bucket_by_length``) are normalised with
    per-bucket statistics, but evaluation uses running statistics averaged over all lengths, so the
    encoder sees differently scaled features at test time; per-molecule normalisation has no such
    train/test difference.

    The paper's reference code feeds the previous character only to a final, separate "teacher
    forced" GRU layer. Here the previous token's embedding is concatenated to the repeated latent
    at the input of the first GRU layer, so the three layers are one cuDNN ``nn.GRU`` call (much
    faster on GPU); the decoder is still an autoregressive 3-layer GRU of 488 units.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metashot.chem.config import VAEConfig
from metashot.chem.functional import reparameterize
from metashot.chem.grammar import SmilesSyntax, SyntaxState

__all__ = ["SmilesVAE", "VAEOutput"]


def _conv_norm(kind: str, channels: int) -> nn.Module:
    """Normalisation of a ``(batch, channels, length)`` conv output: batch statistics (paper) or per molecule."""
    if kind == "batch":
        return nn.BatchNorm1d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)  # over channels and positions of one molecule
    return nn.Identity()


def _dense_norm(kind: str, features: int) -> nn.Module:
    """Normalisation of a ``(batch, features)`` dense output."""
    if kind == "batch":
        return nn.BatchNorm1d(features)
    if kind == "layer":
        return nn.LayerNorm(features)
    return nn.Identity()


class VAEOutput(NamedTuple):
    """What :meth:`SmilesVAE.forward` returns.

    Attributes:
        logits: ``(batch, length, vocab)`` next-token logits (teacher forced).
        mu, logvar, z: ``(batch, latent_dim)``.
        property_pred: ``(batch, num_properties)`` normalised property predictions from ``mu``.
    """

    logits: Tensor
    mu: Tensor
    logvar: Tensor
    z: Tensor
    property_pred: Tensor


class SmilesVAE(nn.Module):
    """Character-level SMILES VAE (encoder, decoder, property head); see the module docstring.

    Args:
        vocab_size: number of tokens, pad (id 0) and BOS (id 1) included.
        config: sizes (paper's ZINC model by default).

    Example:
        >>> vae = SmilesVAE(vocab_size=37)
        >>> ids = torch.zeros(2, 120, dtype=torch.long)
        >>> out = vae(ids)
        >>> out.logits.shape, out.mu.shape
        (torch.Size([2, 120, 37]), torch.Size([2, 196]))
    """

    def __init__(self, vocab_size: int, config: VAEConfig | None = None) -> None:
        super().__init__()
        cfg = config or VAEConfig()
        self.config = cfg
        self.vocab_size = vocab_size
        # -- encoder
        convs: list[nn.Module] = []
        channels = vocab_size
        length = cfg.max_length
        for out_channels, kernel in zip(cfg.conv_channels, cfg.conv_kernels):
            convs += [nn.Conv1d(channels, out_channels, kernel), nn.Tanh(), _conv_norm(cfg.encoder_norm, out_channels)]
            channels, length = out_channels, length - kernel + 1
        self.convs = nn.Sequential(*convs)
        self.encoder_dense = nn.Sequential(
            nn.Linear(channels * length, cfg.encoder_hidden), nn.Tanh(), _dense_norm(cfg.encoder_norm, cfg.encoder_hidden)
        )
        self.to_mu = nn.Linear(cfg.encoder_hidden, cfg.latent_dim)
        self.to_logvar = nn.Linear(cfg.encoder_hidden, cfg.latent_dim)
        # -- decoder
        self.decoder_dense = nn.Sequential(nn.Linear(cfg.latent_dim, cfg.decoder_hidden), nn.Tanh())
        self.token_embedding = nn.Embedding(vocab_size, cfg.token_embedding)
        self.gru = nn.GRU(cfg.decoder_hidden + cfg.token_embedding, cfg.gru_hidden, cfg.gru_layers, batch_first=True)
        self.to_logits = nn.Linear(cfg.gru_hidden, vocab_size)
        # -- property predictor (from mu)
        layers: list[nn.Module] = []
        width = cfg.latent_dim
        for _ in range(cfg.property_layers):
            layers += [nn.Linear(width, cfg.property_hidden), nn.Tanh()]
            width = cfg.property_hidden
        layers.append(nn.Linear(width, cfg.num_properties))
        self.property_head = nn.Sequential(*layers)
        # property normalisation (dataset mean/std), saved with the weights
        self.register_buffer("property_mean", torch.zeros(cfg.num_properties))
        self.register_buffer("property_std", torch.ones(cfg.num_properties))
        self.gru_in_fp32 = False  # speed switch under autocast (see decode_logits); not a parameter

    def decoder_parameters(self) -> list[nn.Parameter]:
        """The weights of the decoder (dense layer, token embedding, GRU, output layer): all that maps ``z``
        to strings. Freezing them leaves every decoding of a given ``z`` unchanged."""
        parts = (self.decoder_dense, self.token_embedding, self.gru, self.to_logits)
        return [p for part in parts for p in part.parameters()]

    @classmethod
    def from_config(cls, vocab_size: int, config: VAEConfig) -> SmilesVAE:
        return cls(vocab_size, config)

    # -- encoder ---------------------------------------------------------------------------------

    def encode(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """``(batch, max_length)`` token ids -> ``mu, logvar``, each ``(batch, latent_dim)``."""
        x = F.one_hot(ids.long(), self.vocab_size).to(self.to_mu.weight.dtype)  # (batch, length, vocab)
        x = self.convs(x.transpose(1, 2))  # (batch, channels, length')
        h = self.encoder_dense(x.flatten(1))  # (batch, encoder_hidden)
        return self.to_mu(h), self.to_logvar(h)

    def predict_properties(self, mu: Tensor, *, normalized: bool = False) -> Tensor:
        """``(batch, latent_dim)`` -> ``(batch, num_properties)`` (in data units unless ``normalized``)."""
        pred = self.property_head(mu)
        return pred if normalized else pred * self.property_std + self.property_mean

    # -- decoder ---------------------------------------------------------------------------------

    def decode_logits(self, z: Tensor, ids: Tensor, token_keep: Tensor | None = None) -> Tensor:
        """Teacher-forced logits ``(batch, length, vocab)`` for target ids ``(batch, length)``.

        ``token_keep`` (``(batch, length)`` booleans, training only): where False the decoder does not see
        the previous token (its embedding is zeroed): word dropout (Bowman et al. 2016), which makes the
        decoder rely on ``z`` instead of acting as a language model.
        """
        batch, length = ids.shape
        previous = torch.cat([torch.ones_like(ids[:, :1]), ids[:, :-1]], dim=1).long()  # BOS, y_0..y_{T-2}
        h = self.decoder_dense(z).unsqueeze(1).expand(batch, length, -1)  # (batch, length, decoder_hidden)
        embedded = self.token_embedding(previous).to(h.dtype)  # (batch, length, token_embedding)
        if token_keep is not None:
            embedded = embedded * token_keep[:, :length].unsqueeze(-1).to(h.dtype)
        x = torch.cat([h, embedded], dim=-1)
        if self.gru_in_fp32 and torch.is_autocast_enabled():
            # cuDNN only runs bf16 GRUs from cuDNN 9.13 on; older builds fall back to a slow per-step
            # kernel, so the trainer may keep the GRU in fp32 (TF32) while the rest runs in bf16
            with torch.autocast(device_type=x.device.type, enabled=False):
                out, _ = self.gru(x.float())  # (batch, length, gru_hidden)
        else:
            out, _ = self.gru(x)  # (batch, length, gru_hidden)
        return self.to_logits(out)

    def decoder_step(
        self, h_z: Tensor, token: Tensor, hidden: Tensor | None, *, first: bool,
        first_token_mask: Tensor | None = None, syntax: SmilesSyntax | None = None, state: SyntaxState | None = None,
    ) -> tuple[Tensor, Tensor]:
        """One free-running decoder step: masked next-token logits and the new GRU state.

        Args:
            h_z: ``(batch, 1, decoder_hidden)``, ``decoder_dense(z)`` with a time axis.
            token: ``(batch, 1)`` the previous token (BOS = 1 at the first step).
            hidden: ``(gru_layers, batch, gru_hidden)`` or None at the first step.
            first: this is the first step (no end token; ``first_token_mask`` applies).

        Returns:
            logits ``(batch, vocab)`` in fp32 with the forbidden tokens at ``-inf`` (BOS always; the end
            token and tokens outside ``first_token_mask`` at the first step; with ``syntax``, the tokens
            that would make the SMILES ill-formed given ``state``), and the new hidden state.
        """
        x = torch.cat([h_z, self.token_embedding(token).to(h_z.dtype)], dim=-1)  # (batch, 1, input)
        y, hidden = self.gru(x, hidden)
        logits = self.to_logits(y[:, 0]).float()  # (batch, vocab)
        logits[:, 1] = float("-inf")  # never emit BOS
        if syntax is not None and state is not None:
            logits = logits.masked_fill(~syntax.allowed(state), float("-inf"))
        if first:
            logits[:, 0] = float("-inf")  # a molecule has at least one token (no empty decodings)
            if first_token_mask is not None:
                logits[:, ~first_token_mask.to(logits.device)] = float("-inf")
        return logits, hidden

    @torch.no_grad()
    def generate(
        self,
        z: Tensor,
        *,
        max_length: int | None = None,
        temperature: float = 0.0,
        generator: torch.Generator | None = None,
        first_token_mask: Tensor | None = None,
        syntax: SmilesSyntax | None = None,
    ) -> Tensor:
        """Free-running decoding of ``z`` ``(batch, latent_dim)`` -> ids ``(batch, max_length)``.

        ``temperature=0`` is greedy (argmax); otherwise sample from ``softmax(logits / temperature)``.
        Rows are padded with 0 after their first pad token. ``first_token_mask`` ``(vocab,)`` bool limits
        the first token (SELFIES: an atom, so no decoding is empty). ``syntax`` (a
        :class:`~metashot.chem.grammar.SmilesSyntax`) masks, at every step, the tokens that would make
        the SMILES ill-formed (syntax-constrained decoding; off by default, as in the paper).
        """
        length = max_length or self.config.max_length
        batch = z.shape[0]
        h_z = self.decoder_dense(z).unsqueeze(1)  # (batch, 1, decoder_hidden)
        token = torch.ones(batch, 1, dtype=torch.long, device=z.device)  # BOS
        hidden: Tensor | None = None
        out = torch.zeros(batch, length, dtype=torch.long, device=z.device)
        finished = torch.zeros(batch, dtype=torch.bool, device=z.device)
        state = syntax.start(batch, z.device) if syntax is not None else None
        for t in range(length):
            logits, hidden = self.decoder_step(h_z, token, hidden, first=t == 0, first_token_mask=first_token_mask,
                                               syntax=syntax, state=state)
            if temperature <= 0:
                nxt = logits.argmax(dim=-1)
            else:
                # inverse-CDF sampling with uniforms from ``generator`` (on its own device), so a CPU
                # generator gives the same molecules on CPU and GPU
                probs = torch.softmax(logits / temperature, dim=-1)
                gen_device = generator.device if generator is not None else z.device
                u = torch.rand(batch, 1, generator=generator, device=gen_device).to(z.device)
                nxt = (probs.cumsum(dim=-1) < u).sum(dim=-1).clamp_max(probs.shape[-1] - 1)
            nxt = torch.where(finished, torch.zeros_like(nxt), nxt)
            out[:, t] = nxt
            finished |= nxt == 0
            if bool(finished.all()):
                break
            if state is not None:
                state = syntax.advance(state, nxt)
            token = nxt.unsqueeze(1)
        return out

    # -- full pass -------------------------------------------------------------------------------

    def forward(self, ids: Tensor, noise: Tensor | None = None, *, decode_length: int | None = None,
                token_keep: Tensor | None = None) -> VAEOutput:
        """Encode, sample ``z`` (``noise`` standard normal; drawn here if None), decode teacher-forced.

        ``decode_length`` decodes only the first positions (logits ``(batch, decode_length, vocab)``):
        positions after every molecule's first pad carry no information for free-running decoding.
        """
        mu, logvar = self.encode(ids)
        if noise is None:
            noise = torch.randn_like(mu)
        z = reparameterize(mu, logvar, noise)
        logits = self.decode_logits(z, ids if decode_length is None else ids[:, :decode_length], token_keep)
        return VAEOutput(logits, mu, logvar, z, self.property_head(mu))
