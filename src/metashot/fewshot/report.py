"""The few-shot part of ``metashot reproduce``: the paper's Omniglot table against our checkpoints.

Scores the committed checkpoints (``checkpoints/omniglot-<method>-<setting>/``) with
:func:`~metashot.fewshot.evaluate.evaluate_setting`, the code behind ``metashot fewshot evaluate``,
so every number here equals the command printed beside it. Writes two figures: accuracy by setting
and method (bars, with the paper's Matching Networks numbers as markers), and one test episode
(support images, queries, predictions).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from metashot.errors import CheckpointError
from metashot.report import Claim, Figure, ReportOptions, SystemReport

log = logging.getLogger(__name__)

SETTINGS = ((5, 1), (5, 5), (20, 1), (20, 5))
# Vinyals et al. 2016, Table 1 (Omniglot), and Snell et al. 2017 for Prototypical Networks; percent.
PAPER = {
    "matching": {(5, 1): 98.1, (5, 5): 98.9, (20, 1): 93.8, (20, 5): 98.5},
    "pixels": {(5, 1): 41.7, (5, 5): 63.2, (20, 1): 26.7, (20, 5): 42.6},
    "baseline": {(5, 1): 80.0, (5, 5): 95.0, (20, 1): 69.5, (20, 5): 89.1},
    "protonet": {(5, 1): 98.8, (5, 5): 99.7, (20, 1): 96.0, (20, 5): 98.9},
}
# "matching" is the committed omniglot-matching-{way}way{shot}shot model: Matching Networks with full
# context embeddings (one model trained 20-way 1-shot serves all four settings); "matching-nofce" the
# per-shot models without FCE (below the paper at 5w1s, 20w1s, 20w5s).
LABELS = {
    "matching": "Matching Networks (FCE)",
    "matching-nofce": "Matching Networks without FCE",
    "protonet": "Prototypical Networks",
    "baseline": "Baseline classifier, cosine NN",
    "pixels": "Pixels, cosine NN",
}


def paper_number(method: str, way: int, shot: int) -> float | None:
    """The paper's accuracy (%) for ``method`` (Matching Networks for both variants), or None."""
    return PAPER.get(method.replace("-nofce", ""), {}).get((way, shot))


def checkpoint_name(method: str, way: int, shot: int) -> str:
    """Folder name of the committed checkpoint scored on ``way``-way ``shot``-shot."""
    if method == "matching":
        return f"omniglot-matching-{way}way{shot}shot"
    if method == "matching-nofce":
        return f"omniglot-matching-nofce-{shot}shot"
    if method == "protonet":
        return f"omniglot-protonet-{shot}shot"
    return "omniglot-baseline"


def _train_quick_models(options: ReportOptions) -> Path:
    """``options.train``: retrain every model into ``out_dir/checkpoints`` (short runs when quick)."""
    from dataclasses import replace

    from metashot.fewshot.config import get_preset
    from metashot.fewshot.train import train

    root = Path(options.out_dir) / "checkpoints"
    steps = 200 if options.quick else None
    plan = {
        "omniglot-matching-5way1shot": "omniglot-matching-fce-1shot",
        "omniglot-matching-nofce-1shot": "omniglot-matching-1shot",
        "omniglot-matching-nofce-5shot": "omniglot-matching-5shot",
        "omniglot-protonet-1shot": "omniglot-protonet-1shot",
        "omniglot-protonet-5shot": "omniglot-protonet-5shot",
        "omniglot-baseline": "omniglot-baseline",
    }
    for folder, preset in plan.items():
        config = get_preset(preset)
        if steps:
            config = replace(config, steps=steps, lr_decay_every=steps)
        run = root / folder
        train(config, out=run, resume=True, device=options.device, show_progress=False, data_dir=options.data_dir)
    for twin in ("5way5shot", "20way1shot", "20way5shot"):  # the FCE model serves every setting
        link = root / f"omniglot-matching-{twin}"
        if not link.exists():
            link.symlink_to((root / "omniglot-matching-5way1shot").resolve(), target_is_directory=True)
    return root


def build_report(options: ReportOptions) -> SystemReport:
    from metashot.fewshot.evaluate import evaluate_setting

    out_dir = Path(options.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_root = _train_quick_models(options) if options.train else Path(options.checkpoints_dir)
    episodes = 25 if options.quick else 1000
    report = SystemReport(system="fewshot", title="Matching Networks for One Shot Learning (Vinyals et al. 2016)")
    results: dict[str, Any] = {"episodes": episodes, "seed": options.seed, "query": 15, "scores": {}}
    found_matching = False
    for method in ("pixels", "baseline", "matching", "matching-nofce", "protonet"):
        for way, shot in SETTINGS:
            folder = None if method == "pixels" else ckpt_root / checkpoint_name(method, way, shot)
            ckpt_arg = "--method pixels" if folder is None else f"--checkpoint {folder}"
            command = (
                f"metashot fewshot evaluate {ckpt_arg} --way {way} --shot {shot} "
                f"--episodes {episodes} --seed {options.seed} --json"
            )
            paper = paper_number(method, way, shot)
            claim_text = f"Omniglot {way}-way {shot}-shot, {LABELS[method]}"
            if folder is not None and not folder.exists():
                report.claims.append(
                    Claim(claim_text, f"{paper}%" if paper else "-", "-", command, "missing",
                          gap=f"no checkpoint {folder}; train it (docs/fewshot.md) or run scripts/device/fewshot.sh",
                          paper_value=paper / 100 if paper else None)
                )
                continue
            found_matching |= method == "matching"
            result = evaluate_setting(
                checkpoint=folder, method="pixels" if folder is None else None, way=way, shot=shot, query=15,
                episodes=episodes, seed=options.seed, device=options.device, data_dir=options.data_dir,
            )
            acc, ci = 100 * result["accuracy"], 100 * result["ci95"]
            results["scores"][f"{method}/{way}way{shot}shot"] = result
            if paper is None:
                status, gap = "info", ""
            elif method == "pixels":  # a baseline: report it, no target to beat
                status, gap = "info", f"{acc - paper:+.1f} points"
            else:
                status = "met" if acc >= paper else "not met"
                gap = "" if status == "met" else f"{acc - paper:+.1f} points"
            report.claims.append(
                Claim(claim_text, f"{paper}%" if paper else "-", f"{acc:.2f} ± {ci:.2f}%", command, status, gap=gap,
                      paper_value=paper / 100 if paper else None, ours_value=result["accuracy"], ci95=result["ci95"])
            )
    if not found_matching:
        raise CheckpointError(
            f"no Matching Networks checkpoint under {ckpt_root} (expected omniglot-matching-5way1shot/ ...); train one: "
            "`metashot fewshot train --preset omniglot-matching-fce-1shot --dataset omniglot --out "
            f"{ckpt_root}/omniglot-matching-5way1shot`, or run `metashot reproduce --train`"
        )
    if options.quick:
        report.notes.append(f"quick mode: {episodes} test episodes per setting instead of 1000 (wider intervals)")
    report.notes.append(
        "Test episodes are fixed by the seed and identical for every method; 15 queries per class; "
        "models in eval mode (batch-norm running statistics, nothing shared between episodes)."
    )
    results["paper"] = {m: {f"{w}way{s}shot": v for (w, s), v in t.items()} for m, t in PAPER.items()}
    report.results = results
    report.figures.append(_bar_figure(results["scores"], out_dir / "fewshot_accuracy.png"))
    first = ckpt_root / checkpoint_name("matching", 5, 1)
    if first.exists():
        report.figures.append(_episode_figure(first, options, out_dir / "fewshot_episode.png"))
    return report


# --- figures ---------------------------------------------------------------------------------------


def _bar_figure(scores: dict[str, dict[str, Any]], path: Path) -> Figure:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in LABELS if any(k.startswith(m + "/") for k in scores)]
    fig, ax = plt.subplots(figsize=(11, 4.2))
    width = 0.8 / max(len(methods), 1)
    for i, method in enumerate(methods):
        xs, ys, es = [], [], []
        for j, (way, shot) in enumerate(SETTINGS):
            r = scores.get(f"{method}/{way}way{shot}shot")
            if r is not None:
                xs.append(j + (i - (len(methods) - 1) / 2) * width)
                ys.append(100 * r["accuracy"])
                es.append(100 * r["ci95"])
        ax.bar(xs, ys, width, yerr=es, label=LABELS[method], capsize=2)
    for j, setting in enumerate(SETTINGS):
        ax.plot([j - 0.4, j + 0.4], [PAPER["matching"][setting]] * 2, "k--", lw=1,
                label="paper: Matching Networks" if j == 0 else None)
    ax.set_xticks(range(len(SETTINGS)), [f"{w}-way {s}-shot" for w, s in SETTINGS])
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Omniglot (Vinyals split), 95% CI over seeded test episodes")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # beside the bars
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Figure("Accuracy by setting and method", path, "Bars: ours (error bars: 95% CI); dashes: the paper's MN.")


def _episode_figure(checkpoint: Path, options: ReportOptions, path: Path) -> Figure:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from metashot.data.omniglot import load_omniglot
    from metashot.fewshot.episodes import episode_from_indices, fixed_episodes
    from metashot.fewshot.evaluate import load_model

    model, config = load_model(checkpoint, "cpu")
    test = load_omniglot("test", split=config.split, root=options.data_dir)
    n_way, n_query = 5, 3
    idx = fixed_episodes(test.labels, n_way, 1, n_query, 1, options.seed, test.class_names)
    ep = episode_from_indices(test.images, idx, 1)
    with torch.inference_mode():
        probs = model(ep.support_images, ep.support_labels, ep.query_images, n_way).exp()[0]  # (n_way*n_query, n_way)
    fig, axes = plt.subplots(n_query + 1, n_way, figsize=(1.6 * n_way, 1.7 * (n_query + 1)))
    for c in range(n_way):
        axes[0, c].imshow(ep.support_images[0, c, 0], cmap="gray_r")
        axes[0, c].set_title(f"support {c}", fontsize=8)
        for q in range(n_query):
            k = c * n_query + q
            pred = int(probs[k].argmax())
            axes[q + 1, c].imshow(ep.query_images[0, k, 0], cmap="gray_r")
            axes[q + 1, c].set_title(f"-> {pred} ({probs[k, pred]:.2f})", fontsize=8,
                                     color="green" if pred == c else "red")
    for a in axes.flat:
        a.set_xticks([])
        a.set_yticks([])
    fig.suptitle(f"One 5-way 1-shot test episode (seed {options.seed}); queries in their true class's column")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Figure("One test episode", path, "Top row: support set; below: queries, predicted class and probability.")


# --- the docs' results table -------------------------------------------------------------------------


def results_table(rows: list[dict[str, Any]], source: str) -> str:
    """A markdown table method x setting (ours ± CI, paper in brackets) from evaluation JSONs.

    Args:
        rows: ``evaluate_setting`` results, each with an extra ``model`` key (``matching-1shot``, ...).
        source: one line saying where the numbers come from (card, run, commit).
    """
    model_to_method = {"matching-1shot": "matching-nofce", "matching-5shot": "matching-nofce", "matching-fce-1shot": "matching",
                       "protonet-1shot": "protonet", "protonet-5shot": "protonet", "baseline": "baseline",
                       "pixels": "pixels"}
    cells: dict[tuple[str, int, int], str] = {}
    for r in rows:
        method = model_to_method.get(r.get("model", ""), r.get("method", ""))
        if r.get("accuracy") is None or method not in LABELS:
            continue
        paper = paper_number(method, r["way"], r["shot"])
        ours = f"{100 * r['accuracy']:.2f} ± {100 * r['ci95']:.2f}"
        cells[(method, r["way"], r["shot"])] = ours + (f" ({paper})" if paper is not None else "")
    header = "| method | " + " | ".join(f"{w}-way {s}-shot" for w, s in SETTINGS) + " |"
    lines = [source, "", header, "|---|" + "---|" * len(SETTINGS)]
    for method, label in LABELS.items():
        if any(k[0] == method for k in cells):
            lines.append(f"| {label} | " + " | ".join(cells.get((method, w, s), "-") for w, s in SETTINGS) + " |")
    lines += ["", "Ours: accuracy % ± 95% CI over 1000 test episodes (seed 0, 15 queries per class); "
              "in brackets the paper's number (Vinyals et al. Table 1; Prototypical Networks: Snell et al. 2017)."]
    return "\n".join(lines)
