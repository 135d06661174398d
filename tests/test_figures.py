"""Tests for idia.figures: the per-bin rates exactly, and that each figure is a real PNG and PDF."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from idia import figures
from idia.attack import summarize
from idia.stats import clopper_pearson

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _counts() -> pd.DataFrame:
    # Two member bins (a: p1, p2; b: p3) and one non-member (p4).
    return pd.DataFrame(
        {
            "person_id": ["p1", "p2", "p3", "p4"],
            "name": ["Ann A", "Bob B", "Cy C", "Di D"],
            "count": [1, 2, 50, 0],
            "member": [True, True, True, False],
            "bin": ["1-9", "1-9", "10+", "non-member"],
            "bin_index": [0, 0, 1, -1],
        }
    )


def _scores() -> pd.DataFrame:
    # score[(person, k, draw)]; tau = 2 below.
    table = {
        ("p1", 1, 0): 0,
        ("p1", 1, 1): 3,
        ("p1", 2, 0): 2,
        ("p1", 2, 1): 5,
        ("p2", 1, 0): 1,
        ("p2", 1, 1): 1,
        ("p2", 2, 0): 2,
        ("p2", 2, 1): 0,
        ("p3", 1, 0): 21,
        ("p3", 1, 1): 0,
        ("p3", 2, 0): 21,
        ("p3", 2, 1): 21,
        ("p4", 1, 0): 0,
        ("p4", 1, 1): 4,
        ("p4", 2, 0): 0,
        ("p4", 2, 1): 0,
    }
    rows = [(p, k, d, s) for (p, k, d), s in table.items()]
    return pd.DataFrame(rows, columns=["person_id", "k", "draw", "score"])


def _assert_png_pdf(png, pdf) -> None:
    data = png.read_bytes()
    assert data[:8] == PNG_MAGIC
    with Image.open(png) as im:
        im.verify()
    with Image.open(png) as im:
        width, height = im.size
        assert width > 300 and height > 200
        # A blank canvas would have a single colour.
        assert len(im.convert("RGB").getcolors(maxcolors=1_000_000)) > 10
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert pdf.stat().st_size > 1000


def test_rates_by_bin_exact():
    rates = figures.rates_by_bin(_scores(), _counts(), tau=2)
    assert list(rates.columns) == ["bin", "bin_index", "k", "draw", "tpr"]
    got = {(r.bin, r.k, r.draw): r.tpr for r in rates.itertuples()}
    assert got == {
        ("1-9", 1, 0): 0.0,
        ("1-9", 1, 1): 0.5,
        ("1-9", 2, 0): 1.0,
        ("1-9", 2, 1): 0.5,
        ("10+", 1, 0): 1.0,
        ("10+", 1, 1): 0.0,
        ("10+", 2, 0): 1.0,
        ("10+", 2, 1): 1.0,
    }
    # Non-members never enter a bin; rows come in bin order.
    assert rates["bin_index"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]


def test_rates_by_bin_tau_is_inclusive():
    one = figures.rates_by_bin(_scores(), _counts(), tau=1)
    row = one[(one["bin"] == "1-9") & (one["k"] == 1) & (one["draw"] == 0)]
    assert row["tpr"].item() == 0.5  # p2 scores exactly tau = 1


def test_rates_by_bin_member_without_scores():
    scores = _scores()
    scores = scores[scores["person_id"] != "p3"]
    with pytest.raises(ValueError, match="p3"):
        figures.rates_by_bin(scores, _counts(), tau=1)


def test_rates_by_bin_non_member_without_scores_is_fine():
    scores = _scores()
    scores = scores[scores["person_id"] != "p4"]
    assert len(figures.rates_by_bin(scores, _counts(), tau=1)) == 8


def test_rates_by_bin_unknown_person():
    extra = pd.DataFrame([{"person_id": "ghost", "k": 1, "draw": 0, "score": 3}])
    with pytest.raises(ValueError, match="ghost"):
        figures.rates_by_bin(pd.concat([_scores(), extra]), _counts(), tau=1)


def test_rates_by_bin_incomplete_grid():
    scores = _scores()
    drop = (scores["person_id"] == "p2") & (scores["k"] == 2) & (scores["draw"] == 1)
    with pytest.raises(ValueError, match="p2"):
        figures.rates_by_bin(scores[~drop], _counts(), tau=1)


def test_rates_by_bin_duplicate_score():
    scores = pd.concat([_scores(), _scores().iloc[[0]]])
    with pytest.raises(ValueError, match="p1"):
        figures.rates_by_bin(scores, _counts(), tau=1)


def test_tpr_heatmap_matrix(tmp_path):
    png, pdf = tmp_path / "h.png", tmp_path / "h.pdf"
    matrix = figures.plot_tpr_heatmap(_scores(), _counts(), 2, png, pdf, "Heatmap — tiny")
    assert matrix.shape == (2, 2)
    assert matrix.index.tolist() == ["1-9", "10+"]
    assert matrix.columns.tolist() == [1, 2]
    np.testing.assert_allclose(matrix.to_numpy(), [[0.25, 0.75], [0.5, 1.0]])
    _assert_png_pdf(png, pdf)


def test_tpr_heatmap_many_columns_not_annotated(tmp_path):
    counts = _counts()
    ks = list(range(1, 16))
    rows = [
        (p, k, d, (k + d + i) % 4)
        for i, p in enumerate(counts["person_id"])
        for k in ks
        for d in range(3)
    ]
    scores = pd.DataFrame(rows, columns=["person_id", "k", "draw", "score"])
    png, pdf = tmp_path / "h.png", tmp_path / "h.pdf"
    matrix = figures.plot_tpr_heatmap(scores, counts, 1, png, pdf, "Wide heatmap")
    assert matrix.shape == (2, 15)
    _assert_png_pdf(png, pdf)


def test_rate_by_bin_table(tmp_path):
    png, pdf = tmp_path / "r.png", tmp_path / "r.pdf"
    table = figures.plot_rate_by_bin(_scores(), _counts(), 2, 2, png, pdf, "Rate by bin")
    assert list(table.columns) == [
        "bin", "n", "tpr_mean", "tpr_sd", "fnr_mean", "fnr_sd",
        "tpr_lo", "tpr_hi", "fnr_lo", "fnr_hi",
    ]  # fmt: skip
    assert table["bin"].tolist() == ["1-9", "10+"]
    assert table["n"].tolist() == [2, 1]
    np.testing.assert_allclose(table["tpr_mean"], [0.75, 1.0])
    np.testing.assert_allclose(table["fnr_mean"], [0.25, 0.0])
    np.testing.assert_allclose(table["tpr_sd"], [np.std([1.0, 0.5], ddof=1), 0.0])
    np.testing.assert_allclose(table["fnr_sd"], table["tpr_sd"])
    _assert_png_pdf(png, pdf)


def test_rate_by_bin_unknown_k(tmp_path):
    with pytest.raises(ValueError, match="k=7"):
        figures.plot_rate_by_bin(
            _scores(), _counts(), 7, 1, tmp_path / "r.png", tmp_path / "r.pdf", "t"
        )


def test_identities_per_bin(tmp_path):
    png, pdf = tmp_path / "i.png", tmp_path / "i.pdf"
    table = figures.plot_identities_per_bin(_counts(), png, pdf, "Identities per bin")
    assert table["bin"].tolist() == ["1-9", "10+", "non-member"]
    assert table["n"].tolist() == [2, 1, 1]
    _assert_png_pdf(png, pdf)


def _metrics() -> pd.DataFrame:
    rows = []
    for k in (1, 2):
        for draw, (tp, fp) in enumerate([(6, 1), (8, 3)]):
            fn, tn = 10 - tp, 10 - fp
            rows.append({"k": k, "draw": draw, "tp": tp, "fn": fn, "fp": fp, "tn": tn})
    m = pd.DataFrame(rows)
    m["tpr"] = m["tp"] / (m["tp"] + m["fn"])
    m["fnr"] = 1 - m["tpr"]
    m["fpr"] = m["fp"] / (m["fp"] + m["tn"])
    m["tnr"] = 1 - m["fpr"]
    m["accuracy"] = (m["tp"] + m["tn"]) / 20
    return m


def test_confusion(tmp_path):
    png, pdf = tmp_path / "c.png", tmp_path / "c.pdf"
    table = figures.plot_confusion(_metrics(), 2, png, pdf, "Confusion — tiny")
    tp = table[(table["truth"] == "member") & (table["predicted"] == "member")].iloc[0]
    assert tp["count_mean"] == 7.0
    assert tp["count_sd"] == pytest.approx(np.std([6, 8], ddof=1))
    assert tp["rate_mean"] == pytest.approx(0.7)
    fp = table[(table["truth"] == "non-member") & (table["predicted"] == "member")].iloc[0]
    assert fp["rate_mean"] == pytest.approx(0.2)
    _assert_png_pdf(png, pdf)
    with pytest.raises(ValueError, match="k=5"):
        figures.plot_confusion(_metrics(), 5, png, pdf, "t")


def _summary(metrics: pd.DataFrame) -> pd.DataFrame:
    return summarize(metrics)  # the table the attack stage writes (summary.csv)


def test_metrics_vs_k(tmp_path):
    png, pdf = tmp_path / "m.png", tmp_path / "m.pdf"
    plotted = figures.plot_metrics_vs_k(_summary(_metrics()), png, pdf, "ViT-B-32, track L")
    assert set(plotted["metric"]) == {"accuracy", "tpr", "fnr", "fpr", "tnr"}
    _assert_png_pdf(png, pdf)


def test_metrics_vs_k_single_k_and_deterministic_pdf(tmp_path):
    summary = _summary(_metrics())
    summary = summary[summary["k"] == 1]
    a = (tmp_path / "a.png", tmp_path / "a.pdf")
    b = (tmp_path / "b.png", tmp_path / "b.pdf")
    figures.plot_metrics_vs_k(summary, *a, "one k")
    figures.plot_metrics_vs_k(summary, *b, "one k")
    _assert_png_pdf(*a)
    assert a[1].read_bytes() == b[1].read_bytes()
    assert a[0].read_bytes() == b[0].read_bytes()


def test_metrics_vs_k_rejects_unknown_metric(tmp_path):
    bad = pd.DataFrame([{"k": 1, "metric": "auc", "mean": 0.5, "sd": 0.1, "lo": 0, "hi": 1}])
    with pytest.raises(ValueError, match="auc"):
        figures.plot_metrics_vs_k(bad, tmp_path / "m.png", tmp_path / "m.pdf", "t")


def test_missing_column_named(tmp_path):
    with pytest.raises(ValueError, match="score"):
        figures.rates_by_bin(_scores().drop(columns="score"), _counts(), tau=1)


# --------------------------------------------------------------------------- report captions

REPORT = Path(__file__).resolve().parents[1] / "workflow" / "report"
CONFIG = Path(__file__).resolve().parents[1] / "config" / "config.yaml"
CAPTIONS = ["metrics_vs_k", "confusion", "rate_by_bin", "identities_per_bin", "tpr_heatmap"]


def _render_rst(path: Path, snakemake: object) -> str:
    """Render a caption as Snakemake's report does: Jinja first, then docutils to HTML."""
    jinja2 = pytest.importorskip("jinja2")
    core = pytest.importorskip("docutils.core")
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    text = env.from_string(path.read_text()).render(snakemake=snakemake)
    # halt_level=2: any docutils warning (broken markup) fails the test.
    html = core.publish_parts(
        text, writer="html", settings_overrides={"halt_level": 2, "report_level": 5}
    )["html_body"]
    return html


def _config() -> dict:
    yaml = pytest.importorskip("yaml")
    if not CONFIG.exists():
        pytest.skip("config/config.yaml not present")
    return yaml.safe_load(CONFIG.read_text())


@pytest.mark.parametrize("name", CAPTIONS)
def test_caption_renders(name):
    config = _config()
    model = next(iter(config["models"]))
    attack = config["attack"]
    spec = {k: v for k, v in config["models"][model].items() if k != "train"}
    snakemake = SimpleNamespace(
        config=config,
        wildcards=SimpleNamespace(model=model),
        params=SimpleNamespace(k=attack["k_max"], tau=attack["tau"], figure=name, spec=spec),
    )
    html = _render_rst(REPORT / f"{name}.rst", snakemake)
    assert model in html
    assert "{{" not in html and "{%" not in html


@pytest.mark.parametrize(
    "name",
    ["rate_by_n", "tpr_heatmap_by_n", "presence", "cohort", "utility", "injection_summary"],
)
def test_track_c_caption_renders(name):
    config = _config()
    injection = config["injection"]
    arch = next(iter(injection["models"]))
    snakemake = SimpleNamespace(
        config=config,
        wildcards=SimpleNamespace(name=arch),
        params=SimpleNamespace(
            k=config["attack"]["k_max"], tau=config["attack"]["tau"],
            presence=injection["presence"],
        ),
    )  # fmt: skip
    html = _render_rst(REPORT / f"{name}.rst", snakemake)
    assert "{{" not in html and "{%" not in html
    if name in ("rate_by_n", "tpr_heatmap_by_n"):
        assert arch in html


def test_metrics_caption_of_an_injected_model_says_its_n():
    config = _config()
    spec = {"arch": "idia-vit-xs", "injection": {"model": "c-vit", "n": 4}}
    snakemake = SimpleNamespace(
        config=config,
        wildcards=SimpleNamespace(model="c-vit-n4"),
        params=SimpleNamespace(k=30, tau=1, figure="metrics_vs_k", spec=spec),
    )
    html = _render_rst(REPORT / "metrics_vs_k.rst", snakemake)
    assert "exactly 4 named pairs" in " ".join(html.split())


@pytest.mark.parametrize("track", ["world", "laion"])
def test_report_intro_renders(track):
    config = _config()
    config["track"] = track
    html = _render_rst(REPORT / "workflow.rst", SimpleNamespace(config=config))
    assert "Identity Inference Attack" in html
    assert f"τ = {config['attack']['tau']}" in html
    assert ("embedded synthetic world" in html) == (track == "world")


def test_error_bars_stay_within_rates():
    err = figures._clipped_err(np.array([0.05, 0.5, 0.97]), np.array([0.1, 0.1, np.nan]))
    np.testing.assert_allclose(err, [[0.05, 0.1, 0.0], [0.1, 0.1, 0.0]])


def test_k_ticks_thin_long_sweeps_to_round_values():
    pos, labels = figures._k_ticks(np.arange(1, 31))
    assert labels == ["1", "5", "10", "15", "20", "25", "30"]
    assert pos.tolist() == [0, 4, 9, 14, 19, 24, 29]
    assert figures._k_ticks(np.array([1, 2, 5]))[1] == ["1", "2", "5"]


# --------------------------------------------------------------------------- person-level intervals


@pytest.fixture
def drawn(monkeypatch) -> list:
    """The figures the plot functions save (the real ``save`` still writes them)."""
    figs: list = []
    real = figures.save

    def keep(fig, png, pdf):
        figs.append(fig)
        real(fig, png, pdf)

    monkeypatch.setattr(figures, "save", keep)
    return figs


def test_metrics_vs_k_shades_clopper_pearson_over_identities(tmp_path, drawn):
    # 10 members, 10 non-members; tp 6 and 8 in the two draws: x̄ = 7 of 10
    summary = _summary(_metrics())
    plotted = figures.plot_metrics_vs_k(summary, tmp_path / "m.png", tmp_path / "m.pdf", "t")
    tpr = plotted[plotted["metric"] == "tpr"]
    assert tpr["n"].tolist() == [10, 10]
    lo, hi = clopper_pearson(7, 10)
    np.testing.assert_allclose(tpr["lo"], [lo, lo])
    np.testing.assert_allclose(tpr["hi"], [hi, hi])
    (ax,) = drawn[0].axes[:1]
    # one shaded band per metric, in METRICS order; the TPR band spans [lo, hi] at each k
    bands = [c for c in ax.collections if c.get_paths() and c.get_alpha() == 0.15]
    assert len(bands) == 5
    ys = bands[1].get_paths()[0].vertices
    for k in (1, 2):
        at_k = ys[np.isclose(ys[:, 0], k), 1]
        assert at_k.min() == pytest.approx(lo) and at_k.max() == pytest.approx(hi)
    # the ±sd bars sit inside: sd over draws of 0.6 and 0.8
    sd = np.std([0.6, 0.8], ddof=1)
    assert tpr["sd"].tolist() == pytest.approx([sd, sd])
    assert hi - lo > 2 * sd  # the identities, not the draws, dominate the uncertainty


def test_metrics_vs_k_interval_is_not_zero_when_draws_agree(tmp_path, drawn):
    metrics = _metrics()
    metrics = metrics[metrics["draw"] == 0]  # one draw: sd 0, like k = all photos
    summary = _summary(metrics)
    summary = summary[summary["k"] == 1]
    figures.plot_metrics_vs_k(summary, tmp_path / "m.png", tmp_path / "m.pdf", "one k")
    ax = drawn[0].axes[0]
    lo, hi = clopper_pearson(6, 10)
    tpr_bars = [
        c for c in ax.collections if hasattr(c, "get_segments") and c.get_linewidth()[0] == 4
    ][1]  # the Clopper-Pearson bar of TPR (second metric)
    (segment,) = tpr_bars.get_segments()
    assert segment[:, 1].tolist() == pytest.approx([lo, hi])
    assert (summary["sd"] == 0).all()


def test_rate_by_bin_error_bars_are_clopper_pearson(tmp_path, drawn):
    # k = 2, tau = 2: bin "1-9" has 2 members hit in 2 and 1 of the draws (x̄ = 1.5 of 2),
    # bin "10+" has 1 member hit in both (1 of 1): sd 0 there, the interval is not
    table = figures.plot_rate_by_bin(_scores(), _counts(), 2, 2, tmp_path / "r.png",
                                     tmp_path / "r.pdf", "t")  # fmt: skip
    expected_lo, expected_hi = clopper_pearson(np.array([1.5, 1.0]), np.array([2, 1]))
    np.testing.assert_allclose(table["tpr_lo"], expected_lo)
    np.testing.assert_allclose(table["tpr_hi"], expected_hi)
    np.testing.assert_allclose(table["fnr_lo"], 1 - expected_hi)
    np.testing.assert_allclose(table["fnr_hi"], 1 - expected_lo)
    assert table.loc[1, "tpr_sd"] == 0 and table.loc[1, "tpr_lo"] == pytest.approx(0.025)
    ax = drawn[0].axes[0]
    tpr_bars, fnr_bars = (c for c in ax.containers if hasattr(c, "errorbar"))
    for bars, rate in ((tpr_bars, "tpr"), (fnr_bars, "fnr")):
        segments = bars.errorbar.lines[2][0].get_segments()
        drawn_lo = [seg[:, 1].min() for seg in segments]
        drawn_hi = [seg[:, 1].max() for seg in segments]
        np.testing.assert_allclose(drawn_lo, table[f"{rate}_lo"])
        np.testing.assert_allclose(drawn_hi, table[f"{rate}_hi"])


def _level_truth(members: list[str], n: int) -> pd.DataFrame:
    is_member = [p in members for p in ["p1", "p2", "p4"]]
    return pd.DataFrame(
        {
            "person_id": ["p1", "p2", "p4"],
            "name": ["Ann A", "Bob B", "Di D"],
            "count": [0] * 3,
            "member": is_member,
            "bin": [f"N={n}" if m else "non-member" for m in is_member],
            "bin_index": [0 if m else -1 for m in is_member],
        }
    )


def test_stack_levels_makes_one_identity_and_one_bin_per_level():
    scores = _scores()[lambda t: t["person_id"] != "p3"]
    stacked, truths = figures.stack_levels(
        [5, 1], [scores, scores], [_level_truth(["p1", "p2"], 5), _level_truth(["p1"], 1)]
    )
    assert len(stacked) == 2 * len(scores) and truths["person_id"].is_unique
    by_id = truths.set_index("person_id")["bin_index"].to_dict()
    # the bins are ordered by N: N=1 first
    assert by_id == {"p1|N=5": 1, "p2|N=5": 1, "p4|N=5": -1, "p1|N=1": 0, "p2|N=1": -1,
                     "p4|N=1": -1}  # fmt: skip
    assert set(stacked["person_id"]) == set(by_id)
    with pytest.raises(ValueError, match="2 levels need"):
        figures.stack_levels([5, 1], [scores], [_level_truth(["p1"], 5)])


def test_plot_by_level_draws_both_figures(tmp_path):
    scores = _scores()[lambda t: t["person_id"] != "p3"]
    paths = {}
    for n, members in ((2, ["p1", "p2"]), (1, ["p1"])):
        scores.to_parquet(tmp_path / f"s{n}.parquet")
        _level_truth(members, n).to_parquet(tmp_path / f"t{n}.parquet")
    for key in ("rate", "rate_pdf", "heatmap", "heatmap_pdf"):
        paths[key] = tmp_path / (key.removesuffix("_pdf") + (".pdf" if "pdf" in key else ".png"))
    table = figures.plot_by_level(
        name="c", k=2, tau=2, levels=[2, 1],
        scores=[tmp_path / "s2.parquet", tmp_path / "s1.parquet"],
        truths=[tmp_path / "t2.parquet", tmp_path / "t1.parquet"], **paths,
    )  # fmt: skip
    assert list(table["n"]) == [1, 2]  # N=1: p1; N=2: p1, p2
    _assert_png_pdf(paths["rate"], paths["rate_pdf"])
    _assert_png_pdf(paths["heatmap"], paths["heatmap_pdf"])


def test_every_figure_a_rule_names_is_registered():
    rules = Path(__file__).resolve().parents[1] / "workflow" / "rules"
    import re

    named = {m for f in rules.glob("*.smk") for m in re.findall(r'figure="(\w+)"', f.read_text())}
    assert named and named == set(figures.FIGURES)
    with pytest.raises(ValueError, match="unknown figure 'nope'; the figures are metrics_vs_k"):
        figures.draw_figure("nope", {}, model="m", k=1, tau=1, png="a.png", pdf="a.pdf")


def test_draw_figure_reads_the_rule_inputs_and_draws_the_same_bytes(tmp_path):
    _scores().to_parquet(tmp_path / "scores.parquet")
    _counts().to_csv(tmp_path / "counts.csv", index=False)
    inputs = {"scores": str(tmp_path / "scores.parquet"), "counts": str(tmp_path / "counts.csv")}
    figures.draw_figure(
        "rate_by_bin", inputs, model="m", k=2, tau=2, png=tmp_path / "a.png", pdf=tmp_path / "a.pdf"
    )
    figures.plot_rate_by_bin(
        _scores(), pd.read_csv(tmp_path / "counts.csv"), 2, 2, png=tmp_path / "b.png",
        pdf=tmp_path / "b.pdf", title="m: TPR / FNR by occurrences (k=2)",
    )  # fmt: skip
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()
