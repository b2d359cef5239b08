"""Syntax-constrained decoding: it never rejects a real SMILES, and it keeps decodings well-formed."""

from __future__ import annotations

import pytest
import torch

from metashot.chem.config import PRESETS
from metashot.chem.smiles import SmilesVocab
from metashot.chem.vae import SmilesVAE
from metashot.errors import UsageError

# Branches, nested branches, bonds after "(", ring closures with bonds, two-digit ring labels,
# bracket atoms with charges / H counts / stereo, cis/trans bonds, disconnected parts.
SMILES = [
    "CC(C)(C)c1ccc2occ(CC(=O)Nc3ccccc3F)c2c1",
    "C[C@@H]1CC(Nc2cncc(-c3nncn3C)c2)C[C@@H](C)C1",
    "O=C(N[C@H]1CC[NH+](Cc2ccccc2)C1)c1ccc(Cl)cc1Br",
    "C/C=C/C(=O)[O-].[Na+]",
    "C1CC2CC3CC4CC5CC6CC7CC8CC9CC%10CC1C2C3C4C5C6C7C8C9%10",
    "c1ccc2c(c1)[nH]c1ccccc12",
    "CC(=O)Oc1ccccc1C(=O)O",
    "N#Cc1ccc(S(=O)(=O)N2CCC(C(=O)[O-])CC2)cc1",
    "C=1CCCCC=1",
    "[2H]C([2H])([2H])N1CCN(C)CC1",
]


def _walk(vocab: SmilesVocab, smiles: str) -> bool:
    syntax = vocab.syntax()
    tokens = vocab.tokenize(smiles)
    ids = vocab.encode(smiles)[: len(tokens)] + [vocab.pad]
    state = syntax.start(1, torch.device("cpu"))
    for i in ids:
        token = torch.tensor([i])
        if not bool(syntax.allowed(state)[0, i]):
            return False
        state = syntax.advance(state, token)
    return True


@pytest.mark.parametrize("tokenizer", ["char", "regex"])
def test_the_syntax_mask_accepts_every_well_formed_smiles(tokenizer):
    vocab = SmilesVocab.from_smiles(SMILES, tokenizer=tokenizer)
    for smiles in SMILES:
        # character vocabularies spell "%10" as three tokens: two-digit ring labels are not allowed there
        if tokenizer == "char" and "%" in smiles:
            assert not _walk(vocab, smiles)
        else:
            assert _walk(vocab, smiles), smiles


@pytest.mark.parametrize("bad", ["C)C", "C(C", "C1CC", "(C)C", "C(=)C", "CC=", "C()C", "1CC1", "C(C)1CC1"])
def test_the_syntax_mask_rejects_ill_formed_smiles(bad):
    vocab = SmilesVocab.from_smiles(SMILES, tokenizer="char")
    assert not _walk(vocab, bad), bad


def test_constrained_decoding_of_an_untrained_model_gives_parsable_strings():
    Chem = pytest.importorskip("rdkit.Chem")
    from rdkit import rdBase

    rdBase.DisableLog("rdApp.*")
    vocab = SmilesVocab.from_smiles(SMILES, tokenizer="char", max_length=60)
    torch.manual_seed(0)
    model = SmilesVAE(len(vocab), PRESETS["tiny"].model).eval()
    with torch.no_grad():
        model.to_logits.bias[vocab.pad] += 3.0  # an untrained decoder that often stops, balanced or not
    z = torch.randn(200, model.config.latent_dim) * 3.0
    ids_free = model.generate(z, max_length=60)
    ids_syntax = model.generate(z, max_length=60, syntax=vocab.syntax())
    free = vocab.decode_batch(ids_free)
    constrained = vocab.decode_batch(ids_syntax)

    def parsable(strings, ids):
        ended = (ids == vocab.pad).any(dim=1).tolist()  # strings cut at max_length cannot be closed
        kept = [s for s, e in zip(strings, ended) if e]
        return kept, sum(Chem.MolFromSmiles(s, sanitize=False) is not None for s in kept)

    kept, ok = parsable(constrained, ids_syntax)
    assert kept and ok == len(kept)  # every finished constrained decoding parses
    kept_free, ok_free = parsable(free, ids_free)
    assert ok_free < len(kept_free)  # ... which free decoding of this random model does not achieve


def test_selfies_needs_no_syntax_constraint():
    vocab = SmilesVocab.from_smiles(["[C][C][O]"], tokenizer="selfies")
    with pytest.raises(UsageError, match="SELFIES"):
        vocab.syntax()
