"""The Markdown results page, ``docs/ablation.md``: fixed text (the paper's
tables, the design), one section per mode (full, quick) that a run of the
other mode leaves as it is, the findings and the configurations tried."""

from .history import ANALYSIS_BEGIN, ANALYSIS_END, format_history, history_block
from .report import checks_table, claims_table, diagnostics_table, results_table, shares_text

PAPER_TABLES = """## The paper's Tables 1 and 2 (Market-1501 columns)

Quoted from the AlignedReID paper (Zhang et al. 2017, arXiv 1711.08184),
Market-1501 single query, without re-ranking, global feature at test time;
percentages. Both networks are pre-trained on ImageNet; ONE model is trained
on Market-1501, CUHK03 and CUHK-SYSU together; input 224 x 224 (H = 7
local parts).

Table 1 (the local branch):

| base | method | mAP | rank-1 | rank-5 |
|---|---|---:|---:|---:|
| ResNet-50 | Baseline | 64.5 | 83.8 | 94.1 |
| ResNet-50 | GL-Baseline | 58.0 | 80.4 | 92.0 |
| ResNet-50 | AlignedReID | 72.8 | 89.2 | 96.0 |
| ResNet50-X | Baseline | 61.7 | 83.6 | 93.3 |
| ResNet50-X | GL-Baseline | 57.1 | 79.7 | 92.4 |
| ResNet50-X | AlignedReID | 71.8 | 89.4 | 95.8 |

Table 2 (mutual learning; MC: classification mutual loss only, MM:
classification + metric mutual loss; the two networks trained together are
one ResNet-50 and one ResNet50-X):

| loss | base | mAP | rank-1 | rank-5 |
|---|---|---:|---:|---:|
| Baseline | ResNet-50 | 64.5 | 83.8 | 94.1 |
| Baseline | ResNet50-X | 61.7 | 83.6 | 93.3 |
| Baseline+MC | ResNet-50 | 67.8 | 86.2 | 94.6 |
| Baseline+MC | ResNet50-X | 68.7 | 87.3 | 95.4 |
| Baseline+MM | ResNet-50 | 66.8 | 86.3 | 95.1 |
| Baseline+MM | ResNet50-X | 66.8 | 86.2 | 94.6 |
| AlignedReID | ResNet-50 | 72.8 | 89.2 | 96.0 |
| AlignedReID | ResNet50-X | 71.8 | 89.4 | 95.8 |
| AlignedReID+MC | ResNet-50 | 70.9 | 88.6 | 95.9 |
| AlignedReID+MC | ResNet50-X | 71.2 | 88.5 | 95.8 |
| AlignedReID+MM | ResNet-50 | 79.3 | 91.8 | 97.1 |
| AlignedReID+MM | ResNet50-X | 79.3 | 91.2 | 96.9 |

The paper's reading: GL-Baseline is often worse than Baseline; AlignedReID
adds 3.1 to 7.9 rank-1 and 3.6 to 10.1 mAP points over Baseline (over the
three datasets); metric mutual learning improves further, and with
AlignedReID the classification mutual loss alone does not help. The final
system's Market-1501 rank-1 of 91.8 is AlignedReID + MM without re-ranking;
94.4 is AlignedReID + MM with re-ranking (CUHK03: 92.4 without, 97.8 with
re-ranking).
"""

DESIGN = """## Design

- **Paired.** For each seed, every variant trains on the same data, sees the
  same batches in the same order with the same augmentation (the PK sampler
  and the crops are seeded by the training seed), and starts from the same
  pretrained backbone. The new layers (local branch, classifier) are drawn
  from the same seed; a variant without a local branch draws fewer of them,
  so its classifier's initial weights differ.
- **A shared pretrained start** stands in for ImageNet pretraining: the
  backbone is first trained with the ID loss only (no local branch, no
  TriHard) on a second synthetic set with other identities (generated with
  another data seed), once, and its weights (`--weights PATH`) are network
  1's start in every run of every seed, as the same ImageNet weights would
  be. The peer of a mutual run starts from a second such pretraining (seed
  1000; `--peer-weights PATH`), so the two networks differ as the paper's
  ResNet-50 and ResNet50-X do. The seeds vary the batches, the augmentation
  and the new layers.
- **Features.** The global feature is not normalised in any arm (as in the
  paper). The local parts are L2-normalised (`--normalize-features local`,
  the AlignedReID++ choice) in every arm with a local branch: unnormalised
  stripe features of the small network lie far apart, the part distance
  `tanh(d / 2)` saturates near 1 and the local loss barely moves (measured in
  the earlier design, configuration 1 below).
- **Test protocol.** The global feature only, as the paper. Per run, the
  per-query rank-1 hit and AP are stored (`WORK_DIR/cfg-*/VARIANT/seedN.json`).
- **Statistics.** For each claim a - b: the mean over seeds of the per-seed
  difference, with a 95 % confidence interval from (1) a paired t over seeds
  (the seed-to-seed variation of training) and (2) a paired percentile
  bootstrap over test identities (2,000 resamples of the test identities with
  all their queries, the same resample for both variants and every seed: the
  finite test set). Neither interval covers both sources at once.
- **Table 2.** The paper's weights (KL 0.01, metric 0.001) and a labelled
  rescaled arm whose weights give each mutual term a set share of the own-loss
  gradient at the start (measured below). Both use the schedule of the Table 1
  runs (the paper trains mutual pairs with a lower learning rate; here the
  schedule is held equal so that the pair differs from AlignedReID only in
  the mutual terms).
- **Misalignment.** The generator's detection boxes move and scale the person
  vertically; the offset, in stripes, of the same body point between two
  images of a person is computed from the generator's geometry
  (`data_prep.synthetic.stripe_offsets`). The knobs are chosen so that most
  positive pairs are at least one stripe apart; alignment can only re-pair
  whole stripes. The training augmentation (pad and crop) adds to it.
- **A no-training check** on the saved features of each run: the local
  features alone ranked with the aligned and with the unaligned local
  distance.
"""


def section(mode, *, settings, seeds, commands, data, runs, variants, shares, cost):
    """One mode's results section (Markdown); ``cost``: the history entry of
    the configuration (wall time, trainings, CPU time)."""
    m = data["misalignment"]
    knobs = "\n".join(f"| `{k}` | {v} |" for k, v in sorted(settings.data_knobs().items()))
    head = "Full runs" if mode == "full" else \
        "Quick run (a smoke test of the pipeline: small data, short schedule; NOT evidence)"
    json_name = "ablation.json" if mode == "full" else "ablation_quick.json"
    cmd = "\n".join(commands)
    return f"""## {head}

```
{cmd}
```

Settings: {settings.describe()}. Seeds: {", ".join(map(str, seeds))}. Results:
[{json_name}]({json_name}). {_cost_text(cost)} {_stored_cost_text(runs)}

Synthetic data (`data_prep.synthetic.generate` knobs of the test data; the
pretraining set has {settings.pretrain_identities} identities and data seed
+ 1000):

| knob | value |
|---|---|
{knobs}

Test split: {data["test"]["queries"]} queries, {data["test"]["gallery"]} gallery images
(Market-1501 protocol).

Misalignment of positive pairs (detection geometry, {settings.stripes} stripes): mean
offset {m["mean_offset_stripes"]:.2f} stripes; {100 * m["share_ge_1_stripe"]:.0f} % of pairs
at least one stripe apart, {100 * m["share_ge_2_stripes"]:.0f} % at least two.

### Results (global feature, %)

{results_table(data, variants)}

### Claims: paired differences a - b (percentage points)

{claims_table(data["claims"])}

### Mutual-loss gradient shares

{shares_text(shares)}

### No-training check: aligned against unaligned local distance on the same features

{checks_table(runs, variants)}

### Training diagnostics (means over seeds, first -> last epoch)

{diagnostics_table(runs, variants)}
"""


def _cost_text(cost):
    """The wall and CPU time of the invocations that trained the runs."""
    if not cost.get("trainings"):
        return "Built from the stored results (`--report-only`)."
    return (f"Wall time of the invocations: {cost.get('wall_seconds', 0) / 60:.1f} min; "
            f"{cost['trainings']} trainings took {cost['train_wall_seconds'] / 60:.1f} min wall "
            f"and {cost['train_cpu_seconds'] / 60:.1f} min CPU (user + system).")


def _stored_cost_text(runs):
    """The time of the stored runs, summed (a run resumed in another
    invocation counts with its last part only)."""
    per = [r for by_seed in runs.values() for r in by_seed.values() if "wall_seconds" in r]
    if not per:
        return ""
    wall = sum(r["wall_seconds"] for r in per) / 60
    cpu = sum(r.get("cpu_seconds", 0.0) for r in per) / 60
    return (f"The {len(per)} stored runs' train.py processes: {wall:.1f} min wall, "
            f"{cpu:.1f} min CPU in all (a run resumed by a later invocation counts its last "
            f"part; the shared pretrainings are not included).")


def render_page(*, sections, analysis, history):
    """The whole page from its sections (``{"full": text, "quick": text}``)."""
    parts = []
    for mode in ("full", "quick"):
        text = sections.get(mode) or (
            "## Full runs\n\nNot run yet with this design.\n" if mode == "full" else "")
        parts.append(f"<!-- {mode} -->\n{text}<!-- /{mode} -->")
    body = "\n\n".join(parts)
    return f"""# Ablations: the paper's Tables 1 and 2 on the synthetic misalignment data

`python -m benchmarks.ablation` trains the paper's ablation variants with
`train.py` on the built-in synthetic dataset (`data_prep.synthetic`, see
[synthetic.md](synthetic.md)) and tests the paper's claims as paired
differences with confidence intervals. Two blocks, one command each,
resumable (each (variant, seed) stores its results when it finishes; running
the same command again skips the finished ones and resumes an interrupted
training from its checkpoint):

```
python -m benchmarks.ablation --block table1   # Baseline, GL-Baseline, AlignedReID
python -m benchmarks.ablation --block table2   # AlignedReID+MM, paper's and rescaled weights
python -m benchmarks.ablation --quick          # a short smoke test of everything
```

Results go to `docs/ablation.json` (`--quick`: `docs/ablation_quick.json`)
and to this page; `--report-only` rebuilds them from the stored results.

{PAPER_TABLES}
{DESIGN}
{body}

{ANALYSIS_BEGIN}
{analysis}{ANALYSIS_END}

## Configurations tried

Every configuration this page has been generated from, in order. "v1" is the
earlier design of this benchmark (3 unpaired seeds, every variant trained
from scratch, global and local features both L2-normalised, 293 test
queries, mean ± std only).

{format_history(history)}

{history_block(history)}
"""
