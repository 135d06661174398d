import json
from pathlib import Path

import pandas as pd

from idia.smk import finish, log_to

log_to(snakemake.log[0])
rows = []
for path in snakemake.input.summaries:
    s = json.loads(Path(path).read_text())
    row = {"model": s["model"], "members": s["n_members"], "non_members": s["n_nonmembers"]}
    for score in ("vote", "combined"):
        b = s[score]
        row[f"{score}_auc"] = b["auc"]
        row[f"{score}_auc_ci"] = f"[{b['auc_lo']:.3f}, {b['auc_hi']:.3f}]"
        for level in ("0.01", "0.001"):
            key = f"tpr_at_fpr_{level}"
            row[f"{score}_{key}"] = b[key]
            row[f"{score}_{key}_ci"] = f"[{b[key + '_lo']:.3f}, {b[key + '_hi']:.3f}]"
    t = s["at_tau"]
    row["tau"] = s["tau"]
    row["tpr_at_tau"] = t["tpr"]
    row["tpr_at_tau_ci"] = f"[{t['tpr_lo']:.3f}, {t['tpr_hi']:.3f}]"
    row["fpr_at_tau"] = t["fpr"]
    row["fpr_at_tau_ci"] = f"[{t['fpr_lo']:.3f}, {t['fpr_hi']:.3f}]"
    row["bh_members"] = s["n_bh_members"]
    row["nonmember_p_ks"] = s["nonmember_pvalues"]["ks_stat"]
    row["nonmember_p_ks_pvalue"] = s["nonmember_pvalues"]["ks_pvalue"]
    row["fpr_statement"] = s["fpr_sentence"]
    rows.append(row)
pd.DataFrame(rows).to_csv(snakemake.output[0], index=False, float_format="%.4f")
finish(snakemake)
