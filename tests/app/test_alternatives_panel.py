"""Model registry page, 'Fairer alternatives' tab: the recorded search's frontier (table and plot) and the
disparity features; only an ML engineer may run one (on an empty book it is refused clearly)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from alternatives_book import book, dataset

from backend.models.registry import Registry

PAGE = Path(__file__).resolve().parents[2] / "pages" / "models.py"
SMALL = {"cv_folds": 2, "n_estimators": 3, "n_boost": 15, "n_trees": 10}


@pytest.fixture(scope="module")
def searched(trained_registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from backend.training.alternatives import register_chosen, search
    from backend.training.train import train

    root = tmp_path_factory.mktemp("alt_page") / "models"
    shutil.copytree(trained_registry, root)
    data = dataset(book(2000, seed=4))
    base = train(data, seed=0, **SMALL)
    reg = Registry(root)
    assert register_chosen(reg, data, base, search(data, base))
    return root


@pytest.fixture
def ready(console, searched):
    console.install_model(searched)
    return console


def test_frontier_table_plot_and_attribution(ready):
    at = ready.open_page("risk_manager", PAGE)
    frames = [d.value for d in at.dataframe]
    frontier = next(f for f in frames if "worst AIR" in f.columns)
    assert frontier["chosen"].sum() == 1 and "base" in set(frontier["candidate"])
    assert (frontier.loc[frontier["chosen"], "worst AIR"] >= 0.8).all()
    attribution = next(f for f in frames if "feature" in f.columns and len(f.columns) == 2)
    assert attribution["feature"].iloc[0] == "tenure_gap"
    assert not {"age_band", "sex"} & set(attribution["feature"])
    text = " ".join(m.value for m in at.markdown)
    assert "Worst adverse-impact ratio of the base model" in text and "a cost of" in text
    assert "Retrain on the book and search for an alternative" not in [b.label for b in at.button]


def test_ml_engineer_search_on_an_empty_book_is_refused(ready):
    at = ready.open_page("ml_engineer", PAGE)
    before = len(Registry(ready.registry_dir).versions())
    at.button(key="models_alt_run").click().run()
    assert not at.exception
    assert any(e.value.startswith("too little data to retrain") for e in at.error)
    assert len(Registry(ready.registry_dir).versions()) == before
