"""SMILES (and SELFIES) vocabularies, tokenisation and input validation.

The paper (Gómez-Bombarelli et al., https://arxiv.org/abs/1610.02415, section "Methods") one-hot
encodes SMILES *character by character* (35 symbols for ZINC, ``Cl`` is ``C`` + ``l``) and pads to
120 with spaces. :class:`SmilesVocab` does the same with ``tokenizer="char"``; ``"regex"`` uses
multi-character tokens (``Cl``, ``Br``, ``[nH]``, ...), and ``"selfies"`` encodes each molecule as a
SELFIES string (Krenn et al. 2020) so that every decoded string is a valid molecule.

RDKit is imported lazily: tokenising and encoding need no RDKit (training runs without it);
:func:`canonicalize` / :meth:`SmilesVocab.prepare` (checking user input) do.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from metashot.chem.grammar import SmilesSyntax
from metashot.errors import InvalidSmilesError, UsageError

PAD = "<pad>"  # id 0: fills every position after the molecule; decoding stops at the first one
BOS = "<bos>"  # id 1: the decoder's input at step 0 (teacher forcing); never a target
TOKENIZERS = ("char", "regex", "selfies")

# Schwaller et al. 2019 (Molecular Transformer) SMILES regex.
_SMILES_REGEX = re.compile(
    r"(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|\/|:|~|@|\?|>|\*|\$|%[0-9]{2}|[0-9])"
)

_TIMESTAMP = re.compile(r"^\[\d\d:\d\d:\d\d\]\s*")  # RDKit log lines start with [hh:mm:ss]

__all__ = ["BOS", "PAD", "TOKENIZERS", "BadMolecule", "SmilesVocab", "canonicalize", "rdkit_available"]


# ---------------------------------------------------------------------------------------------
# RDKit helpers (lazy)


def rdkit_available() -> bool:
    try:
        import rdkit  # noqa: F401
    except ImportError:
        return False
    return True


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage().strip())


def _parse(smiles: str) -> tuple[Any, str]:
    """RDKit molecule (or None) and RDKit's reason when parsing fails."""
    try:
        from rdkit import Chem, rdBase
    except ImportError:
        raise UsageError("this needs RDKit: pip install 'metashot[chem]'") from None
    rdBase.LogToPythonLogger()
    logger = logging.getLogger("rdkit")
    handler = _Capture()
    # RDKit installs its own stderr handler on this logger: swap all handlers for ours while parsing
    saved_handlers, saved_propagate = logger.handlers[:], logger.propagate
    logger.handlers = [handler]
    logger.propagate = False
    try:
        mol = Chem.MolFromSmiles(smiles)
    finally:
        logger.handlers = saved_handlers
        logger.propagate = saved_propagate
    messages = [_TIMESTAMP.sub("", m).strip() for m in handler.messages]
    reason = "; ".join(m for m in messages if m) or "RDKit could not parse it"
    return mol, reason


def canonicalize(smiles: str) -> str:
    """RDKit canonical SMILES; :class:`InvalidSmilesError` naming the input and RDKit's reason."""
    if not smiles or not smiles.strip():
        raise InvalidSmilesError("empty SMILES string ''; give a molecule such as 'CCO'")
    mol, reason = _parse(smiles.strip())
    if mol is None:
        raise InvalidSmilesError(f"invalid SMILES {smiles!r}: {reason}")
    from rdkit import Chem

    return Chem.MolToSmiles(mol)


def is_valid(smiles: str) -> bool:
    """True when RDKit parses ``smiles`` (non-empty) into a molecule."""
    if not smiles:
        return False
    from rdkit import Chem, rdBase

    with rdBase.BlockLogs():
        return Chem.MolFromSmiles(smiles) is not None


# ---------------------------------------------------------------------------------------------
# the vocabulary


@dataclass(frozen=True)
class BadMolecule:
    """One rejected input of a batch: its position, the string and the reason."""

    index: int
    smiles: str
    reason: str


def _to_selfies(smiles: str) -> str:
    import selfies

    try:
        return selfies.encoder(smiles)
    except Exception as exc:  # selfies raises EncoderError; keep the message
        raise InvalidSmilesError(f"SMILES {smiles!r} cannot be written as SELFIES: {exc}") from None


class SmilesVocab:
    """Token <-> id mapping for SMILES (or SELFIES) strings padded to ``max_length``.

    Ids 0 and 1 are :data:`PAD` and :data:`BOS`; the rest are the tokens seen in the training set,
    sorted. A molecule of ``n`` tokens is encoded as its ``n`` ids followed by ``max_length - n``
    pads (the paper pads with spaces and the decoder learns to emit them).

    Example:
        >>> vocab = SmilesVocab.from_smiles(["CCO", "c1ccccc1Cl"])
        >>> ids = vocab.encode("CCO")          # list of max_length ints
        >>> vocab.decode(ids)
        'CCO'
    """

    def __init__(self, tokens: Sequence[str], *, tokenizer: str = "char", max_length: int = 120) -> None:
        if tokenizer not in TOKENIZERS:
            raise UsageError(f"unknown tokenizer {tokenizer!r}; choose one of {', '.join(TOKENIZERS)}")
        if max_length < 1:
            raise UsageError(f"max_length must be >= 1, got {max_length}")
        body = [t for t in tokens if t not in (PAD, BOS)]
        if len(set(body)) != len(body):
            raise UsageError("vocabulary tokens must be distinct")
        self.tokens: list[str] = [PAD, BOS, *body]
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.index = {t: i for i, t in enumerate(self.tokens)}

    # -- construction / serialisation ----------------------------------------------------------

    @classmethod
    def from_smiles(cls, smiles: Iterable[str], *, tokenizer: str = "char", max_length: int = 120) -> SmilesVocab:
        """Collect the tokens of ``smiles`` (sorted, so the vocabulary does not depend on order)."""
        probe = cls([], tokenizer=tokenizer, max_length=max_length)
        seen: set[str] = set()
        if tokenizer == "selfies":
            import selfies

            seen.update(selfies.get_semantic_robust_alphabet())
        for s in smiles:
            seen.update(probe.tokenize(s))
        return cls(sorted(seen), tokenizer=tokenizer, max_length=max_length)

    def to_dict(self) -> dict[str, Any]:
        return {"tokens": self.tokens[2:], "tokenizer": self.tokenizer, "max_length": self.max_length}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SmilesVocab:
        return cls(data["tokens"], tokenizer=data["tokenizer"], max_length=int(data["max_length"]))

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SmilesVocab) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"SmilesVocab({len(self)} tokens, tokenizer={self.tokenizer!r}, max_length={self.max_length})"

    @property
    def pad(self) -> int:
        return 0

    @property
    def bos(self) -> int:
        return 1

    def first_token_mask(self) -> Tensor | None:
        """``(vocab,)`` bool: tokens a decoding may start with (SELFIES: atoms only, so every decoding is a
        non-empty molecule); None when any token may start."""
        if self.tokenizer != "selfies":
            return None
        mask = torch.tensor([not (t.startswith(("[Branch", "[=Branch", "[#Branch", "[Ring", "[=Ring", "[#Ring"))
                                  or t in (PAD, BOS, "[nop]", ".")) for t in self.tokens])
        return mask if bool(mask.any()) else None

    def syntax(self) -> SmilesSyntax:
        """The syntax constraint of this vocabulary (SMILES tokenizers; SELFIES needs none)."""
        if self.tokenizer == "selfies":
            raise UsageError("syntax-constrained decoding is for SMILES vocabularies: every SELFIES string is "
                             "already a valid molecule")
        return SmilesSyntax(self.tokens, char_mode=self.tokenizer == "char", end_id=self.pad, bos_id=self.bos)

    # -- strings <-> tokens ---------------------------------------------------------------------

    def tokenize(self, smiles: str) -> list[str]:
        """Split a SMILES string into tokens (for SELFIES: convert, then split at brackets)."""
        if self.tokenizer == "char":
            return list(smiles)
        if self.tokenizer == "regex":
            tokens = _SMILES_REGEX.findall(smiles)
            if "".join(tokens) != smiles:
                # report the first character the regex could not place
                pos = 0
                for tok in tokens:
                    found = smiles.find(tok, pos)
                    if found != pos:
                        break
                    pos += len(tok)
                raise InvalidSmilesError(f"SMILES {smiles!r}: character {smiles[pos]!r} at index {pos} is not a SMILES token")
            return tokens
        import selfies

        return list(selfies.split_selfies(_to_selfies(smiles)))

    def _detokenize(self, tokens: list[str]) -> str:
        text = "".join(tokens)
        if self.tokenizer == "selfies":
            import selfies

            try:
                return selfies.decoder(text)
            except Exception:
                return ""
        return text

    def encode(self, smiles: str) -> list[int]:
        """Token ids padded to ``max_length``; :class:`InvalidSmilesError` on empty, unknown or too long.

        No RDKit check here (see :meth:`prepare`).
        """
        if not smiles:
            raise InvalidSmilesError("empty SMILES string ''; give a molecule such as 'CCO'")
        tokens = self.tokenize(smiles)
        ids = []
        pos = 0
        for tok in tokens:
            if tok not in self.index or tok in (PAD, BOS):
                where = f"at index {pos} " if self.tokenizer != "selfies" else ""
                raise InvalidSmilesError(
                    f"SMILES {smiles!r}: token {tok!r} {where}is not in the model's vocabulary "
                    f"({len(self) - 2} tokens: {''.join(t for t in self.tokens[2:] if len(t) == 1)}...)"
                )
            ids.append(self.index[tok])
            pos += len(tok)
        if len(ids) > self.max_length:
            raise InvalidSmilesError(
                f"SMILES {smiles!r} has {len(ids)} tokens; the model allows at most {self.max_length}"
            )
        return ids + [self.pad] * (self.max_length - len(ids))

    def encode_batch(self, smiles: Sequence[str]) -> Tensor:
        """``(batch, max_length)`` int64 ids; raises on the first bad molecule."""
        return torch.tensor([self.encode(s) for s in smiles], dtype=torch.long)

    def decode(self, ids: Sequence[int] | Tensor) -> str:
        """String up to the first pad (BOS ids are skipped)."""
        if isinstance(ids, Tensor):
            ids = ids.tolist()
        tokens = []
        for i in ids:
            if i == self.pad:
                break
            if i == self.bos or i >= len(self.tokens):
                continue
            tokens.append(self.tokens[i])
        return self._detokenize(tokens)

    def decode_batch(self, ids: Tensor) -> list[str]:
        """``(batch, length)`` ids -> list of strings."""
        return [self.decode(row) for row in ids.tolist()]

    # -- user input -----------------------------------------------------------------------------

    def prepare(self, smiles: str, *, canonical: bool = True) -> tuple[str, list[int]]:
        """Validate user input: RDKit-parse, canonicalise, tokenise, check length.

        Returns the canonical SMILES and its ids; :class:`InvalidSmilesError` naming the input and
        the reason (empty, RDKit's parse error, token outside the vocabulary, too long).
        """
        text = canonicalize(smiles) if canonical else smiles
        try:
            return text, self.encode(text)
        except InvalidSmilesError as exc:
            if text != smiles:
                raise InvalidSmilesError(f"{exc} (canonical form of input {smiles!r})") from None
            raise

    def prepare_many(
        self, smiles: Sequence[str], *, canonical: bool = True
    ) -> tuple[list[str], Tensor, list[BadMolecule]]:
        """Validate a batch, keeping the good molecules: ``(good_smiles, (n_good, max_length) ids, bad)``."""
        good: list[str] = []
        rows: list[list[int]] = []
        bad: list[BadMolecule] = []
        for i, s in enumerate(smiles):
            try:
                text, ids = self.prepare(s, canonical=canonical)
            except InvalidSmilesError as exc:
                bad.append(BadMolecule(i, s, str(exc)))
                continue
            good.append(text)
            rows.append(ids)
        tensor = torch.tensor(rows, dtype=torch.long) if rows else torch.zeros(0, self.max_length, dtype=torch.long)
        return good, tensor, bad

    def encode_dataset(self, smiles: Sequence[str]) -> tuple[Tensor, list[BadMolecule]]:
        """Encode a training set without RDKit: ``((n, max_length) uint8/int16 ids, skipped)``.

        Molecules with unknown tokens or too long are skipped and reported (not raised).
        """
        dtype = torch.uint8 if len(self) <= 255 else torch.int16
        rows: list[list[int]] = []
        bad: list[BadMolecule] = []
        for i, s in enumerate(smiles):
            try:
                rows.append(self.encode(s))
            except InvalidSmilesError as exc:
                bad.append(BadMolecule(i, s, str(exc)))
        ids = torch.tensor(rows, dtype=dtype) if rows else torch.zeros(0, self.max_length, dtype=dtype)
        return ids, bad
