"""The chemical VAE's data: splits, vocabulary and property normalisation (no RDKit needed).

Split (fixed, no randomness): the **last** ``test_fraction`` (default 10%, i.e. the last 24,946 of
the 249,456 ZINC-250k molecules, rows 224,510..249,455) is held out as the test set; the file is
already in random order ("rndm"). ``max_molecules`` keeps only the first N training molecules. The
vocabulary is built from the whole training split (also when ``max_molecules`` is set), so quick
runs and full runs share it (SELFIES: the training molecules used plus SELFIES' semantically robust
alphabet, because converting all 225k molecules takes minutes). Properties are z-scored with the training-split mean/std.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from metashot.chem.config import TrainConfig
from metashot.chem.smiles import SmilesVocab
from metashot.data.molecules import MoleculeTable, load_moses, load_zinc250k

logger = logging.getLogger(__name__)

__all__ = ["MoleculeData", "batch_order", "load_molecule_data", "load_split"]


@dataclass
class MoleculeData:
    """Encoded training and test sets.

    Attributes:
        vocab: the vocabulary (from the training split).
        train_smiles / test_smiles: the strings that were encoded (bad ones dropped).
        train_ids / test_ids: ``(n, max_length)`` uint8 token ids.
        train_properties / test_properties: ``(n, 3)`` float32 raw logP, QED, SAS (or None).
        property_mean / property_std: ``(3,)`` training-split statistics.
        skipped: number of molecules dropped (unknown token / too long).
    """

    vocab: SmilesVocab
    train_smiles: list[str]
    train_ids: Tensor
    train_properties: Tensor | None
    test_smiles: list[str]
    test_ids: Tensor
    test_properties: Tensor | None
    property_mean: Tensor
    property_std: Tensor
    skipped: int


def load_split(
    dataset: str, test_fraction: float, data_dir: str | os.PathLike[str] | None
) -> tuple[MoleculeTable, MoleculeTable]:
    """``(train, test)`` tables: the test set is the last ``test_fraction`` of the file (MOSES: its test file)."""
    if dataset == "moses":
        return load_moses("train", data_dir), load_moses("test", data_dir)
    table = load_zinc250k(data_dir)
    n_test = int(round(len(table) * test_fraction))
    cut = len(table) - n_test
    return table.subset(slice(0, cut)), table.subset(slice(cut, None))


def _encode(vocab: SmilesVocab, table: MoleculeTable) -> tuple[list[str], Tensor, Tensor | None, int]:
    ids, bad = vocab.encode_dataset(table.smiles)
    if not bad:
        props = None if table.properties is None else torch.from_numpy(table.properties)
        return table.smiles, ids, props, 0
    drop = {b.index for b in bad}
    keep = np.array([i for i in range(len(table)) if i not in drop], dtype=np.int64)
    for b in bad[:5]:
        logger.warning("skipping molecule %d of %s: %s", b.index, table.source, b.reason)
    props = None if table.properties is None else torch.from_numpy(table.properties[keep])
    return [table.smiles[i] for i in keep], ids, props, len(bad)


def load_molecule_data(
    config: TrainConfig, data_dir: str | os.PathLike[str] | None, vocab: SmilesVocab | None = None
) -> MoleculeData:
    """Read, split and encode the dataset of ``config`` (vocabulary built here unless given)."""
    train, test = load_split(config.dataset, config.test_fraction, data_dir)
    if config.max_molecules is not None and config.tokenizer == "selfies":
        train = train.subset(slice(0, config.max_molecules))
    if vocab is None:
        vocab = SmilesVocab.from_smiles(train.smiles, tokenizer=config.tokenizer, max_length=config.model.max_length)
    if config.max_molecules is not None:
        train = train.subset(slice(0, config.max_molecules))
    train_smiles, train_ids, train_props, skipped_train = _encode(vocab, train)
    test_smiles, test_ids, test_props, skipped_test = _encode(vocab, test)
    if train_props is not None:
        mean = train_props.mean(dim=0)
        std = train_props.std(dim=0).clamp_min(1e-6)
    else:
        mean, std = torch.zeros(3), torch.ones(3)
    return MoleculeData(
        vocab=vocab,
        train_smiles=train_smiles,
        train_ids=train_ids,
        train_properties=train_props,
        test_smiles=test_smiles,
        test_ids=test_ids,
        test_properties=test_props,
        property_mean=mean,
        property_std=std,
        skipped=skipped_train + skipped_test,
    )


def batch_order(lengths: Tensor, batch_size: int, *, seed: int, bucket: bool) -> Tensor:
    """One epoch's visiting order of ``len(lengths)`` molecules (a permutation, on the CPU).

    With ``bucket``: sort by length within random chunks of 64 batches, cut into batches and shuffle
    the batches, so consecutive ``batch_size`` slices hold molecules of similar length (the tail that
    does not fill a batch stays at the end). Deterministic in ``seed`` (exact resume).
    """
    g = torch.Generator().manual_seed(seed)
    n = len(lengths)
    perm = torch.randperm(n, generator=g)
    if not bucket:
        return perm
    chunk = batch_size * 64
    perm = torch.cat([p[torch.argsort(lengths[p], stable=True)] for p in perm.split(chunk)])
    n_batches = n // batch_size
    batches = perm[: n_batches * batch_size].view(n_batches, batch_size)  # (n_batches, batch_size)
    batches = batches[torch.randperm(n_batches, generator=g)]
    return torch.cat([batches.reshape(-1), perm[n_batches * batch_size :]])
