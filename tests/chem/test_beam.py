"""Beam search: exact against brute-force enumeration, greedy at width 1, scores are sequence log-probs."""

from __future__ import annotations

import itertools

import pytest
import torch

from metashot.chem.beam import beam_search
from metashot.chem.config import PRESETS
from metashot.chem.smiles import SmilesVocab
from metashot.chem.vae import SmilesVAE
from metashot.errors import UsageError

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "C1CCNCC1", "CC(C)(C)Br", "O=C(O)c1ccccc1Cl"]


def _model(vocab_size: int, seed: int = 0) -> SmilesVAE:
    torch.manual_seed(seed)
    return SmilesVAE(vocab_size, PRESETS["tiny"].model).eval()


def _log_prob(model: SmilesVAE, z: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Teacher-forced log p(ids | z) ``(batch,)`` up to and including the first end token, under the
    decoding masks (never BOS; no end token first) — what beam search should report."""
    logits = model.decode_logits(z, ids).float()  # (batch, length, vocab)
    logits[:, :, 1] = float("-inf")
    logits[:, 0, 0] = float("-inf")
    logp = torch.log_softmax(logits, dim=-1).gather(2, ids.unsqueeze(-1)).squeeze(-1)  # (batch, length)
    ended_before = torch.cumsum((ids == 0).long(), dim=1) - (ids == 0).long()  # end tokens before t
    return (logp * (ended_before == 0)).sum(dim=1)


def _all_strings(vocab: int, length: int) -> torch.Tensor:
    """Every decodable id sequence of ``length`` (tokens 2..vocab-1, then the end token and padding)."""
    rows = []
    for n in range(1, length + 1):
        for body in itertools.product(range(2, vocab), repeat=n):
            rows.append(list(body) + [0] * (length - n))
    return torch.tensor(rows)


@torch.no_grad()
def test_a_wide_enough_beam_finds_the_exact_most_probable_strings_in_order() -> None:
    vocab, length = 4, 4  # tokens: end, BOS, two symbols; strings of 1-4 symbols (30 of them)
    model = _model(vocab)
    z = torch.randn(3, model.config.latent_dim) * 2
    every = _all_strings(vocab, length)
    for i in range(3):
        exact = _log_prob(model, z[i : i + 1].expand(len(every), -1), every)
        assert torch.logsumexp(exact, 0).item() == pytest.approx(0.0, abs=1e-4)  # a distribution over strings
        best = exact.topk(5)
        ids, score = beam_search(model, z[i : i + 1], width=16, max_length=length)  # 16 >= 2^4: nothing pruned
        assert torch.allclose(score[0, :5], best.values, atol=1e-5)
        assert torch.equal(ids[0, :5], every[best.indices])


@torch.no_grad()
def test_width_one_is_greedy_decoding_and_scores_are_the_sequences_log_probabilities() -> None:
    vocab = SmilesVocab.from_smiles(SMILES, tokenizer="char", max_length=40)
    model = _model(len(vocab), seed=1)
    with torch.no_grad():
        model.to_logits.bias[vocab.pad] += 2.0  # strings that end before max_length
    z = torch.randn(20, model.config.latent_dim) * 2
    greedy = model.generate(z, max_length=40)
    ids, score = beam_search(model, z, width=1, max_length=40)
    assert torch.equal(ids[:, 0], greedy)
    ids, score = beam_search(model, z, width=5, max_length=40)
    assert ids.shape == (20, 5, 40) and score.shape == (20, 5)
    assert (score[:, :-1] >= score[:, 1:]).all()  # best first
    flat = ids.reshape(-1, 40)
    ended = (flat == 0).any(dim=1)
    expected = _log_prob(model, z.repeat_interleave(5, dim=0), flat)
    assert torch.allclose(score.reshape(-1)[ended], expected[ended], atol=1e-4)
    first_end = (flat == 0).long().argmax(dim=1)
    after = torch.arange(40).unsqueeze(0) > first_end.unsqueeze(1)
    assert (flat[ended.unsqueeze(1) & after] == 0).all()  # padded after the end token
    assert int((flat == 1).sum()) == 0  # never BOS


@torch.no_grad()
def test_constrained_beam_search_keeps_every_finished_string_well_formed() -> None:
    Chem = pytest.importorskip("rdkit.Chem")
    from rdkit import rdBase

    rdBase.DisableLog("rdApp.*")
    vocab = SmilesVocab.from_smiles(SMILES, tokenizer="char", max_length=40)
    model = _model(len(vocab), seed=2)
    with torch.no_grad():
        model.to_logits.bias[vocab.pad] += 3.0
    z = torch.randn(30, model.config.latent_dim) * 3
    ids, score = beam_search(model, z, width=4, max_length=40, syntax=vocab.syntax())
    flat = ids.reshape(-1, 40)
    ended = (flat == vocab.pad).any(dim=1).tolist()
    strings = [s for s, e in zip(vocab.decode_batch(flat), ended) if e]
    assert strings and all(Chem.MolFromSmiles(s, sanitize=False) is not None for s in strings)


def test_a_beam_needs_a_positive_width() -> None:
    model = _model(6)
    with pytest.raises(UsageError, match="width"):
        beam_search(model, torch.zeros(1, model.config.latent_dim), width=0)
