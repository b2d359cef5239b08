"""Syntax-constrained decoding of SMILES: a token mask that keeps every decoding well-formed.

A character (or regex-token) SMILES decoder can emit strings that no parser accepts: a ``)`` with no
open branch, a string that ends inside a branch or with a ring bond left open, a branch right after
another ``(``. :class:`SmilesSyntax` tracks, for a batch of decodings at once, the paren depth, the
open ring-bond labels and the class of the last token, and gives the tokens that may come next; the
decoder sets the others' logits to ``-inf`` before its argmax / sampling step. Only syntax is
constrained: valence and aromaticity (kekulisation) errors remain possible, so RDKit still decides
validity. This is decoding-time only (the model is unchanged), in the spirit of grammar / syntax-
directed VAEs (Kusner et al. 2017; Dai et al. 2018), and is off by default: the paper decodes freely.

The rules (OpenSMILES, simplified): a string starts with an atom; a ring-bond digit follows an atom,
a ring-bond digit or a bond symbol; ``(`` follows an atom, a ring bond or ``)``; a branch starts with
an atom or a bond; ``)`` needs an open branch and follows an atom, a ring bond or ``)``; a bond is
followed by an atom or a ring bond; the string ends only with every branch and ring bond closed and
after an atom, a ring bond or ``)``. Character vocabularies spell bracket atoms (``[nH]``) one
character at a time, so ``[`` … ``]`` is a state of its own, inside which digits are counts, not ring
bonds; outside brackets only the organic-subset letters are atoms, ``l`` / ``r`` only extend ``C`` /
``B``, and two-digit ring labels (``%10``, three characters) are not allowed. Regex vocabularies hold
``Cl``, ``[nH]``, ``%10`` as single tokens. Ring labels beyond 62 (``%63``…) are not tracked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["SmilesSyntax", "SyntaxState"]

# states: the class of the last token (or where we are inside a bracket atom)
START, ATOM, RING, BOND, OPEN, CLOSE, DOT, BRACKET_OPEN, IN_BRACKET, ATOM_C, ATOM_B = range(11)
_NUM_STATES = 11  # ATOM_C / ATOM_B: the last token was "C" / "B", which "l" / "r" may extend (character mode)
_ORGANIC = set("BCNOPSFIbcnops*")
_BONDS = set("=#-/\\:$")
_RING_TOKEN = re.compile(r"^(\d|%\d\d)$")


def _token_class(token: str, char_mode: bool) -> str:
    if token == "(":
        return "open"
    if token == ")":
        return "close"
    if token == ".":
        return "dot"
    if token in _BONDS:
        return "bond"
    if _RING_TOKEN.match(token):
        return "ring"
    if char_mode and token == "[":
        return "bracket_open"
    if char_mode and token == "]":
        return "bracket_close"
    if char_mode and token == "%":
        return "other"  # two-digit ring labels spelled character by character: not tracked, never allowed
    if char_mode and token in ("l", "r"):
        return "tail_" + token  # the second letter of Cl / Br
    if char_mode and token not in _ORGANIC:
        return "bracket_only"  # H, @, +, other element letters: only inside [...]
    return "atom"


@dataclass
class SyntaxState:
    """Per-decoding state, all ``(batch,)``: last-token class, paren depth, open ring labels (bits)."""

    kind: Tensor
    depth: Tensor
    rings: Tensor

    def select(self, rows: Tensor) -> SyntaxState:
        """The states of decodings ``rows`` (``(n,)`` indices, repeats allowed): beam search reorders them."""
        return SyntaxState(kind=self.kind[rows], depth=self.depth[rows], rings=self.rings[rows])


class SmilesSyntax:
    """Masks of the tokens that keep a batch of partial SMILES decodings well-formed.

    Args:
        tokens: the vocabulary, id order (``tokens[end_id]`` is the end / pad token, ``tokens[bos_id]``
            the decoder's start token; both are treated specially).
        char_mode: the vocabulary spells bracket atoms one character at a time (``char`` tokenizer).
        end_id, bos_id: ids of the end (pad) and start tokens.

    Example:
        >>> syntax = SmilesSyntax(["<pad>", "<bos>", "C", "(", ")", "1", "="], char_mode=True)
        >>> state = syntax.start(1, torch.device("cpu"))
        >>> [t for t, ok in zip(syntax.tokens, syntax.allowed(state)[0].tolist()) if ok]
        ['C']
    """

    def __init__(self, tokens: Sequence[str], *, char_mode: bool, end_id: int = 0, bos_id: int = 1) -> None:
        self.tokens = list(tokens)
        v = len(self.tokens)
        classes = [_token_class(t, char_mode) for t in self.tokens]
        classes[end_id] = "end"
        classes[bos_id] = "bos"
        cls = {name: torch.tensor([c == name for c in classes]) for name in
               ("atom", "ring", "bond", "open", "close", "dot", "bracket_open", "bracket_close", "end",
                "tail_l", "tail_r")}
        inside = torch.tensor([c not in ("open", "close", "dot", "bracket_open", "end", "bos", "other")
                               for c in classes])
        inside &= torch.tensor([t not in _BONDS - {"-"} for t in self.tokens])  # "-" is a charge inside [...]
        allowed = torch.zeros(_NUM_STATES, v, dtype=torch.bool)
        an_atom = cls["atom"] | cls["bracket_open"]  # an organic-subset atom, or the start of a bracket atom
        after_atom = an_atom | cls["ring"] | cls["bond"] | cls["open"] | cls["close"] | cls["dot"] | cls["end"]
        allowed[START] = an_atom
        allowed[ATOM] = after_atom
        allowed[RING] = after_atom
        allowed[CLOSE] = after_atom & ~cls["ring"]
        allowed[BOND] = an_atom | cls["ring"]
        allowed[OPEN] = an_atom | cls["bond"]
        allowed[DOT] = an_atom
        allowed[BRACKET_OPEN] = inside & ~cls["bracket_close"]
        allowed[IN_BRACKET] = inside
        allowed[ATOM_C] = after_atom | cls["tail_l"]
        allowed[ATOM_B] = after_atom | cls["tail_r"]
        self._allowed = allowed
        # next state after each token, from each state
        kind_of = torch.full((v,), ATOM, dtype=torch.long)
        for name, state in (("ring", RING), ("bond", BOND), ("open", OPEN), ("close", CLOSE), ("dot", DOT),
                            ("bracket_open", BRACKET_OPEN), ("bracket_close", ATOM)):
            kind_of[cls[name]] = state
        if char_mode:
            kind_of[torch.tensor([t == "C" for t in self.tokens])] = ATOM_C
            kind_of[torch.tensor([t == "B" for t in self.tokens])] = ATOM_B
        self._next = kind_of.expand(_NUM_STATES, v).clone()
        self._next[BRACKET_OPEN] = torch.where(cls["bracket_close"], ATOM, IN_BRACKET)
        self._next[IN_BRACKET] = torch.where(cls["bracket_close"], ATOM, IN_BRACKET)
        self._open = cls["open"].long()
        self._close = cls["close"]
        self._end = cls["end"]
        bits = torch.zeros(v, dtype=torch.long)
        for i, t in enumerate(self.tokens):
            if classes[i] == "ring":
                label = int(t.lstrip("%"))
                if label < 63:
                    bits[i] = 1 << label
        self._ring_bit = bits

    def _on(self, device: torch.device) -> None:
        if self._allowed.device != device:
            for name in ("_allowed", "_next", "_open", "_close", "_end", "_ring_bit"):
                setattr(self, name, getattr(self, name).to(device))

    def start(self, batch: int, device: torch.device) -> SyntaxState:
        """The state of ``batch`` empty decodings."""
        self._on(device)
        zeros = torch.zeros(batch, dtype=torch.long, device=device)
        return SyntaxState(kind=zeros.clone(), depth=zeros.clone(), rings=zeros.clone())

    def allowed(self, state: SyntaxState) -> Tensor:
        """``(batch, vocab)`` bool: the tokens that may come next (at least one per row)."""
        mask = self._allowed[state.kind].clone()  # (batch, vocab)
        mask[:, self._close] &= (state.depth > 0).unsqueeze(1)
        balanced = (state.depth == 0) & (state.rings == 0)
        mask[:, self._end] &= balanced.unsqueeze(1)
        return mask

    def advance(self, state: SyntaxState, token: Tensor) -> SyntaxState:
        """The state after appending ``token`` ``(batch,)`` to each decoding."""
        in_bracket = (state.kind == BRACKET_OPEN) | (state.kind == IN_BRACKET)
        kind = self._next[state.kind, token]
        depth = state.depth + self._open[token] - self._close[token].long()
        rings = torch.where(in_bracket, state.rings, state.rings ^ self._ring_bit[token])
        return SyntaxState(kind=kind, depth=depth, rings=rings)
