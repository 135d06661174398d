import pandas as pd

from idia import figures
from idia.smk import finish, log_to

log_to(snakemake.log[0])
name, k, tau = snakemake.wildcards.name, snakemake.params.k, snakemake.params.tau
# One identity per (person, level): the levels become the "bins" of the occurrence figures,
# ordered by N, so the paper's TPR-vs-occurrences plots become TPR-vs-injected-pairs.
levels = list(snakemake.params.levels)
order = {n: i for i, n in enumerate(sorted(levels))}
scores, truths = [], []
for n, score_path, truth_path in zip(levels, snakemake.input.scores, snakemake.input.truth):
    score, truth = pd.read_parquet(score_path), pd.read_parquet(truth_path)
    score["person_id"] = score["person_id"] + f"|N={n}"
    truth["person_id"] = truth["person_id"] + f"|N={n}"
    scores.append(score)
    truth["bin_index"] = truth["bin_index"].where(~truth["member"], order[n])
    truths.append(truth)
scores, truths = pd.concat(scores, ignore_index=True), pd.concat(truths, ignore_index=True)
label = "injected pairs per member (N)"
table = figures.plot_rate_by_bin(
    scores, truths, k, tau, png=snakemake.output.rate, pdf=snakemake.output.rate_pdf,
    title=f"{name}: TPR / FNR by injected pairs (k={k})", bin_label=label,
)  # fmt: skip
print(table.to_string(index=False))
figures.plot_tpr_heatmap(
    scores, truths, tau, png=snakemake.output.heatmap, pdf=snakemake.output.heatmap_pdf,
    title=f"{name}: TPR over attack photos x injected pairs", bin_label=label,
)  # fmt: skip
finish(snakemake)
