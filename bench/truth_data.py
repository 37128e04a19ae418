"""Real crowdsourcing datasets with gold labels, read from where they are published.

Source: the 22 categorical datasets gathered by Y. Li et al. for "Exploiting Worker
Correlation for Label Aggregation in Crowdsourcing" (EBCC, ICML 2019), public repository
``github.com/yuan-li/truth-inference-at-scale`` (``data/<collection>/<name>/label.csv`` with
``item,worker,label`` and ``truth.csv`` with ``item,truth``). They come from the SpectralMethods
Meet EM paper (bluebird, dog, rte, trec, web), the Active Crowd Toolkit (CF, MS, SP,
ZenCrowd), Zheng et al.'s "Truth Inference in Crowdsourcing: Is the Problem Solved?" (duck,
product, sentiment, face, relevance, adult content) and CrowdScale 2013. Their licences vary
and are not all stated, so Crowdlab commits none of them: point ``--data`` (or the
``CROWDLAB_TRUTH_DATA`` environment variable) at a clone or a bare git mirror of that
repository, and this module reads the files from there.
"""

from __future__ import annotations

import io
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

ENV = "CROWDLAB_TRUTH_DATA"


@dataclass(frozen=True)
class RealDataset:
    """One dataset: ``answers`` (``task, worker, label``) and ``truth`` (task -> label)."""

    name: str
    answers: pd.DataFrame
    truth: pd.Series


class _Source:
    """A work tree (``<root>/data/...``) or a git directory (files read with ``git show``)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.is_git = not (self.root / "data").is_dir() and (
            (self.root / "HEAD").is_file() or (self.root / ".git").exists()
        )
        if not self.is_git and not (self.root / "data").is_dir():
            raise FileNotFoundError(f"{root}: neither a clone nor a git mirror with data/")

    def paths(self) -> list[str]:
        if self.is_git:
            command = ["git", "--git-dir", str(self.root), "ls-tree", "-r", "--name-only"]
            out = subprocess.run(
                [*command, "HEAD", "data"], check=True, capture_output=True, text=True
            ).stdout
            return out.splitlines()
        return [str(p.relative_to(self.root)) for p in (self.root / "data").rglob("*.csv")]

    def read(self, path: str) -> pd.DataFrame:
        if self.is_git:
            blob = subprocess.run(
                ["git", "--git-dir", str(self.root), "show", f"HEAD:{path}"],
                check=True, capture_output=True,
            ).stdout  # fmt: skip
            return pd.read_csv(io.BytesIO(blob))
        return pd.read_csv(self.root / path)


def default_root() -> str | None:
    """``$CROWDLAB_TRUTH_DATA``, else a fetched mirror under ``/work/.mirror`` if present."""
    if os.environ.get(ENV):
        return os.environ[ENV]
    mirror = Path("/work/.mirror/yuan-li+truth-inference-at-scale/repo")
    return str(mirror) if mirror.exists() else None


def load_datasets(
    root: str | os.PathLike[str], names: list[str] | None = None
) -> list[RealDataset]:
    """Every ``label.csv`` + ``truth.csv`` pair under ``data/``, tasks without truth dropped.

    Args:
        root: A clone of the repository, or its bare git directory.
        names: Only these dataset names (the folder name, e.g. ``rte``); all when None.
    """
    source = _Source(root)
    datasets = []
    for path in sorted(p for p in source.paths() if p.endswith("/label.csv")):
        folder = path.rsplit("/", 1)[0]
        name = folder.rsplit("/", 1)[1]
        if names and name not in names:
            continue
        try:
            labels = source.read(path)
            truth = source.read(f"{folder}/truth.csv")
        except (OSError, subprocess.CalledProcessError):
            continue  # a file the mirror lacks (snapshots leave out files of 4 MiB and more)
        answers = pd.DataFrame(
            {
                "task": labels["item"].astype(str).to_numpy(),
                "worker": labels["worker"].astype(str).to_numpy(),
                "label": labels["label"].astype(str).to_numpy(),
            }
        )
        gold = pd.Series(
            truth["truth"].astype(str).to_numpy(), index=truth["item"].astype(str), name="truth"
        )
        gold = gold[~gold.index.duplicated()]
        answers = answers[answers["task"].isin(gold.index)].reset_index(drop=True)
        gold = gold[gold.index.isin(answers["task"])]
        datasets.append(RealDataset(name, answers, gold))
    return datasets
