"""Why decoded SMILES are invalid, and a check that the syntax constraint accepts real molecules.

    python scripts/chem/syntax_report.py failures results/chem/gpu_decodes.json [more decodes JSON ...]
    python scripts/chem/syntax_report.py accepts checkpoints/chem-vae-zinc [--molecules 3000]

``failures``: the prior samples of saved decodes (``chem evaluate --save-decodes``) sorted by what RDKit
says: valid, a ``)`` too many, an unclosed ``(``, other unparsable syntax (mostly ring bonds),
kekulisation (aromaticity) or valence failures. ``accepts``: walks the first N ZINC-250k molecules
through the checkpoint vocabulary's :class:`metashot.chem.grammar.SmilesSyntax` and counts any that it
would have forbidden (should be 0). The figures in results/chem/constrained/README.md come from here.
"""

from __future__ import annotations

import argparse
import collections
import json

import torch

from metashot.chem.train import load_model
from metashot.data.molecules import load_zinc250k


def failure_kind(smiles: str) -> str:
    from rdkit import Chem

    depth = 0
    for ch in smiles:
        depth += (ch == "(") - (ch == ")")
        if depth < 0:
            return "syntax: a ')' too many"
    if depth > 0:
        return "syntax: unclosed '('"
    mol = Chem.MolFromSmiles(smiles, sanitize=False) if smiles else None
    if mol is None:
        return "syntax: other (ring bonds, ...)"
    try:
        Chem.SanitizeMol(mol)
    except Chem.rdchem.KekulizeException:
        return "aromaticity (kekulisation)"
    except Chem.rdchem.AtomValenceException:
        return "valence"
    except Exception as exc:  # noqa: BLE001 - any other sanitisation failure, by name
        return f"other: {type(exc).__name__}"
    return "valid"


def failures(paths: list[str]) -> None:
    from rdkit import rdBase

    rdBase.DisableLog("rdApp.*")
    for path in paths:
        prior = json.loads(open(path, encoding="utf-8").read())["prior"]
        counts = collections.Counter(failure_kind(s) for s in prior)
        print(f"{path} ({len(prior)} prior samples)")
        for kind, n in counts.most_common():
            print(f"  {kind:32s} {n / len(prior):6.1%}")


def accepts(checkpoint: str, molecules: int) -> None:
    _model, vocab, _config = load_model(checkpoint)
    syntax = vocab.syntax()
    rejected = []
    for smiles in load_zinc250k().smiles[:molecules]:
        ids = vocab.encode(smiles)[: len(vocab.tokenize(smiles))] + [vocab.pad]
        state = syntax.start(1, torch.device("cpu"))
        for i in ids:
            if not bool(syntax.allowed(state)[0, i]):
                rejected.append(smiles)
                break
            state = syntax.advance(state, torch.tensor([i]))
    print(f"{checkpoint} ({vocab.tokenizer} tokens): {len(rejected)} of {molecules} ZINC molecules rejected")
    for smiles in rejected[:5]:
        print("  ", smiles)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("failures")
    p.add_argument("decodes", nargs="+")
    p = sub.add_parser("accepts")
    p.add_argument("checkpoint")
    p.add_argument("--molecules", type=int, default=3000)
    args = parser.parse_args()
    if args.command == "failures":
        failures(args.decodes)
    else:
        accepts(args.checkpoint, args.molecules)


if __name__ == "__main__":
    main()
