"""Vocabulary round trips and the bad-input errors (empty, invalid, unknown token, too long)."""

from __future__ import annotations

import pytest
import torch

from metashot.chem.smiles import SmilesVocab
from metashot.errors import InvalidSmilesError

SMILES = ["CC(C)(C)c1ccc2occ(CC(=O)Nc3ccccc3F)c2c1", "C[C@@H]1CC(Nc2cncc(-c3nncn3C)c2)C[C@@H](C)C1", "ClCBr", "c1cc[nH]c1"]


@pytest.mark.parametrize("tokenizer", ["char", "regex"])
def test_vocab_round_trip(tokenizer: str) -> None:
    vocab = SmilesVocab.from_smiles(SMILES, tokenizer=tokenizer, max_length=60)
    for s in SMILES:
        ids = vocab.encode(s)
        assert len(ids) == 60
        assert vocab.decode(ids) == s
    batch = vocab.encode_batch(SMILES)
    assert batch.shape == (4, 60) and batch.dtype == torch.long
    assert vocab.decode_batch(batch) == SMILES
    assert SmilesVocab.from_dict(vocab.to_dict()) == vocab


def test_char_tokens_split_two_letter_atoms_as_in_the_paper_and_regex_keeps_them() -> None:
    assert SmilesVocab([], tokenizer="char").tokenize("ClC[nH]") == ["C", "l", "C", "[", "n", "H", "]"]
    assert SmilesVocab([], tokenizer="regex").tokenize("ClC[nH]") == ["Cl", "C", "[nH]"]


def test_selfies_vocab_round_trips_to_the_same_molecule() -> None:
    pytest.importorskip("selfies")
    pytest.importorskip("rdkit")
    from metashot.chem.metrics import same_molecule

    vocab = SmilesVocab.from_smiles(SMILES, tokenizer="selfies", max_length=80)
    for s in SMILES:
        assert same_molecule(vocab.decode(vocab.encode(s)), s)
    # any id sequence decodes to a valid molecule (or nothing)
    g = torch.Generator().manual_seed(0)
    random_ids = torch.randint(2, len(vocab), (20, 15), generator=g)
    from metashot.chem.metrics import canonical_or_none

    assert all(canonical_or_none(s) is not None for s in vocab.decode_batch(random_ids) if s)


def test_unknown_character_error_names_the_input_the_token_and_its_index() -> None:
    vocab = SmilesVocab.from_smiles(["CCO"])
    with pytest.raises(InvalidSmilesError, match=r"'CCN'.*token 'N' at index 2 is not in the model's vocabulary"):
        vocab.encode("CCN")


def test_too_long_and_empty_inputs_are_rejected_with_the_reason() -> None:
    vocab = SmilesVocab.from_smiles(["CCO"], max_length=5)
    with pytest.raises(InvalidSmilesError, match=r"'CCCCCC' has 6 tokens; the model allows at most 5"):
        vocab.encode("CCCCCC")
    with pytest.raises(InvalidSmilesError, match="empty SMILES"):
        vocab.encode("")


def test_invalid_smiles_error_gives_rdkits_reason() -> None:
    pytest.importorskip("rdkit")
    vocab = SmilesVocab.from_smiles(SMILES)
    with pytest.raises(InvalidSmilesError, match=r"invalid SMILES 'C1CC'.*unclosed ring"):
        vocab.prepare("C1CC")
    with pytest.raises(InvalidSmilesError, match="empty SMILES"):
        vocab.prepare("   ")


def test_a_batch_with_bad_molecules_reports_them_and_keeps_the_rest() -> None:
    pytest.importorskip("rdkit")
    vocab = SmilesVocab.from_smiles(SMILES, max_length=50)
    good, ids, bad = vocab.prepare_many(["CCO", "C1CC", "", "c1ccccc1", "CC[Xe]", "C" * 60])
    assert good == ["CCO", "c1ccccc1"]
    assert ids.shape == (2, 50)
    assert [b.index for b in bad] == [1, 2, 4, 5]
    assert "unclosed ring" in bad[0].reason and "empty" in bad[1].reason
    assert "not in the model's vocabulary" in bad[2].reason and "at most 50" in bad[3].reason


def test_novelty_index_finds_training_molecules_written_differently() -> None:
    pytest.importorskip("rdkit")
    from metashot.chem.metrics import NoveltyIndex, evaluate_samples

    train = ["OCC", "C1=CC=CC=C1Cl", "CC(=O)Nc1ccccc1"]  # not in canonical form
    index = NoveltyIndex(train)
    assert "CCO" in index and "Clc1ccccc1" in index and "CC(=O)Nc1ccccc1" in index
    assert "CCN" not in index
    result = evaluate_samples(["CCO", "CCO", "CCN", "C1CC", ""], train=train)
    assert result["validity"] == pytest.approx(3 / 5)
    assert result["uniqueness"] == pytest.approx(2 / 3)
    assert result["novelty"] == pytest.approx(1 / 2)


def test_every_selfies_decoding_of_an_untrained_model_is_a_valid_molecule() -> None:
    pytest.importorskip("selfies")
    pytest.importorskip("rdkit")
    from metashot.chem import latent
    from metashot.chem.config import PRESETS
    from metashot.chem.metrics import evaluate_samples
    from metashot.chem.vae import SmilesVAE

    vocab = SmilesVocab.from_smiles(SMILES, tokenizer="selfies", max_length=120)
    torch.manual_seed(0)
    model = SmilesVAE(len(vocab), PRESETS["tiny"].model).eval()
    z = torch.randn(100, model.config.latent_dim)
    strings = latent.decode(model, vocab, z, temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert evaluate_samples(strings)["validity"] == 1.0
