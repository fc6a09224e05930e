"""The words and code of every pipeline notebook, as data (:mod:`wiseft.pipeline.notebooks` assembles them).

Each notebook is a title, a short explanation of the step and the paper's equation or protocol, the imports,
the ``parameters`` cell, the cell that opens the run, and then short cells that call ``wiseft``. A code cell
whose text starts with ``CHECK`` prints key numbers that nbval compares with the recorded ``mini`` outputs.
"""

from __future__ import annotations

#: First line of the cells nbval checks (``--nbval-lax`` compares only these).
CHECK = "# NBVAL_CHECK_OUTPUT"

PARAMETERS = """\
profile = "mini"  # a packaged profile (`wiseft profiles` lists them) or the path of a profile YAML
overrides = []  # profile settings to change, written as for `wiseft run --set`
run_dir = None  # None: runs/<profile> of this repository
device = None  # None: $WISEFT_DEVICE when set, else the profile's device"""

OPEN_RUN = "ctx = open_run(profile, overrides, run_dir, device)\nprint(describe_run(ctx))"

#: The device-independent check (``wiseft.check``): the paper's claims and key numbers within 0.5 pp.
CHECK_RUN_NOTE = """\
**The check.** The paper's claims about this run, one line each, and every number of its paper tables against the
values recorded for the profile and the device (`notebooks/expected/<profile>-<device>.json`) within 0.5 pp. On the
CPU the tables above are compared digit for digit as well; a GPU runner compares these lines only (the *device
tier*, `docs/notebooks.md`). A broken run prints `FAIL` and what is off."""
CHECK_RUN = f"{CHECK}\nprint(check_run(ctx))"

PARAMETERS_NOTE = """\
**Parameters.** The next cell holds this notebook's parameters; its defaults are the offline `mini` profile, so the
notebook runs as it is in JupyterLab. `wiseft run --profile NAME` executes it with papermill and injects its own
values after that cell. Results go to the run folder (`runs/<profile>/` of this repository unless `run_dir` says
otherwise): `results.jsonl`, `checkpoints/`, `figures/`."""

# ------------------------------------------------------------------------------------------------- pipeline
#: The heading of the last cell of every pipeline and figure notebook.
WHAT_THIS_RUN_SHOWS = """\
## What this run shows

The run's own numbers for the claim the paper makes here, next to the paper's, and a plain sentence wherever they
differ (the offline digits world of `mini` is not ImageNet, and some of the paper's findings do not hold in it)."""

PIPELINE = {
    "01_data.ipynb": [
        ("md", """\
# 1 · Data: verify (or build) the profile's datasets

WiSE-FT is evaluated on a **reference distribution**, the one the model is fine-tuned on (ImageNet in the paper), and
on **distribution shifts** of it that share its classes (ImageNetV2, -R, -Sketch, ObjectNet and -A; paper Sec. 2 and
Table 1). The α chosen without shift data uses a **held-out split** of the reference set.

This step checks every dataset the profile names before anything is trained: the number of classes, the number of
images against the count the dataset registry expects, and a decode of a fixed random sample of images. A missing
dataset is reported with the command that fetches it (`wiseft data download NAME --root ...`), and the notebook stops
with that message.

For the `mini` profile the data is the **embedded offline world**: printed digits as the reference (`world-print`)
and six shifts of them (handwritten, other fonts, colour, rotation, sketch, noise), with a small CLIP pretrained on
digit images and captions. Both are drawn and trained on the spot the first time (a few minutes on a laptop CPU) and
cached afterwards."""),
        ("md", PARAMETERS_NOTE),
        ("code", "from wiseft.figures.claims import what_this_run_shows\n"
                 "from wiseft.notebook import describe_run, open_run\n"
                 "from wiseft.steps import check_data, run_data\n"
                 "from wiseft.steps.data import describe_world, format_data"),
        ("params", PARAMETERS),
        ("code", OPEN_RUN),
        ("md", "Build the offline world when the profile's model is `world:<name>` (cached after the first time), then "
               "check every split of every dataset; `sample` images per split are decoded."),
        ("code", "table = run_data(ctx, sample=64)\nprint(describe_world(table))"),
        ("md", "One row per dataset split: `use` says which split the pipeline fine-tunes on (`train`), evaluates "
               "(`eval`) and chooses α on (`held-out`)."),
        ("code", f"{CHECK}\nprint(format_data(table))"),
        ("md", "Every split must be in place before the next steps run; otherwise this cell names each missing or "
               "broken dataset and the command that fixes it."),
        ("code", f"{CHECK}\nprint(check_data(table))"),
        ("md", WHAT_THIS_RUN_SHOWS),
        ("code", f"{CHECK}\nprint(what_this_run_shows(table, '01_data'))"),
    ],
    "02_zeroshot.ipynb": [
        ("md", """\
# 2 · Zero-shot: the classifier θ₀ from text prompts

A contrastive image–text model classifies without training data: each class name is put into prompt templates
("a photo of a {}."), the text encoder embeds every prompt, the embeddings of a class are L2-normalised, averaged and
normalised again, and the stacked class embeddings, multiplied by the model's temperature, become the weights of a
linear head on the normalised image features (paper App. D.1; 80 OpenAI templates for ImageNet). The image encoder
with this head is **θ₀**, the zero-shot end of every WiSE-FT curve (α = 0) and the first row of Table 1.

This step builds the head, saves the classifier as `checkpoints/zeroshot.safetensors` (+ `.json`), and scores it on
the reference set, its held-out split and every shift."""),
        ("md", PARAMETERS_NOTE),
        ("code", "from wiseft.figures.claims import what_this_run_shows\n"
                 "from wiseft.notebook import describe_run, markdown, open_run\n"
                 "from wiseft.steps import run_zeroshot, summary_table"),
        ("params", PARAMETERS),
        ("code", OPEN_RUN),
        ("md", "Build (or load, when the run already has it) and evaluate the zero-shot classifier."),
        ("code", "zeroshot = run_zeroshot(ctx)"),
        ("md", "Accuracy in % on each dataset (each in its primary metric), the average over the shifts, and the "
               "average of the reference and the shift average: the columns of the paper's Table 1."),
        ("code", f"{CHECK}\nprint(markdown(summary_table(zeroshot), title='Zero-shot (%)'))"),
        ("md", WHAT_THIS_RUN_SHOWS),
        ("code", f"{CHECK}\nprint(what_this_run_shows(zeroshot, '02_zeroshot'))"),
    ],
    "03_finetune.ipynb": [
        ("md", """\
# 3 · Fine-tuning: θ₁ end to end (E2E) and as a linear classifier (LC)

Standard fine-tuning on the reference training set gives the other end of the WiSE-FT curve, **θ₁** (α = 1):

- **E2E** (paper App. D.2): every weight is trained, starting from θ₀ (the zero-shot head included), with AdamW,
  weight decay 0.1, a cosine learning-rate schedule with warm-up, gradient clipping and cross-entropy; the paper uses
  10 epochs, batch 512 and learning rate 3·10⁻⁵ on ImageNet.
- **LC** (App. C.3.3, D.3): the image encoder stays frozen; a linear head on its cached features, warm-started from
  the zero-shot head, is trained with hyperparameters from a random search scored on a held-out split.

Where the profile asks for them, this step also trains the **fine-tuning variants** of Fig. 3 (other learning rates
and epochs, `finetune.variants`) and the **k-shot linear classifiers** of Fig. 17 (`finetune.lc.shots`). Training
resumes from its last checkpoint when interrupted. Each fine-tuned classifier is then scored on every dataset."""),
        ("md", PARAMETERS_NOTE),
        ("code", "from wiseft.figures.claims import what_this_run_shows\n"
                 "from wiseft.notebook import describe_run, markdown, open_run, run_results\n"
                 "from wiseft.steps import evaluate_all_finetuned, run_finetune, summary_table\n"
                 "from wiseft.summaries import finetune_table"),
        ("params", PARAMETERS),
        ("code", OPEN_RUN),
        ("md", "Fine-tune every enabled mode, then the variants and the k-shot runs (already finished runs are "
               "reused). The summary lists each run with its chosen hyperparameters."),
        ("code", "runs = run_finetune(ctx)"),
        ("md", "Each fine-tuned classifier with the hyperparameters it was trained with (E2E: the profile's settings; "
               "LC: what the random search chose, with its held-out accuracy)."),
        ("code", "print(markdown(finetune_table(ctx.dir), title='Fine-tuning runs and their hyperparameters'))"),
        ("md", "Score θ₁ of each mode on the reference set, its held-out split and every shift."),
        ("code", "finetuned = evaluate_all_finetuned(ctx)"),
        ("md", "Zero-shot against fine-tuned, in %: fine-tuning raises reference accuracy; under shift it can lose "
               "what the zero-shot model had (the paper's starting observation, Fig. 1)."),
        ("code", "results = run_results(ctx)\nendpoints = results[results['method'].isin(['zeroshot', 'finetuned'])]"),
        ("code", f"{CHECK}\nprint(markdown(summary_table(endpoints), title='Zero-shot and fine-tuned (%)'))"),
        ("md", WHAT_THIS_RUN_SHOWS),
        ("code", f"{CHECK}\nprint(what_this_run_shows(results, '03_finetune'))"),
    ],
    "04_interpolate.ipynb": [
        ("md", """\
# 4 · Interpolation: the WiSE-FT α sweep

WiSE-FT ensembles the two models in weight space (paper Eq. 1):

$$\\theta_\\alpha = (1-\\alpha)\\cdot\\theta_0 + \\alpha\\cdot\\theta_1, \\qquad \\alpha \\in [0, 1],$$

over **every** parameter, the image encoder and the head, with θ₀ the zero-shot and θ₁ the fine-tuned weights. α = 0
is the zero-shot model, α = 1 standard fine-tuning, and α = 0.5 the paper's default when nothing else is known. The
paper sweeps α from 0 to 1 in steps of 0.05 (Tables 4 and 5).

The sweep is one pass over the evaluation data: each image is read once and scored by every α. In the same pass,
where the profile asks for them: the **output-space ensemble** of the endpoints' logits, (1−α)·f(x; θ₀) + α·f(x; θ₁)
(Fig. 10), the probability ensemble and random interpolation (Fig. 13), and **Fisher-weighted merging** (the official
code's `--fisher`). The α values of `interpolation.keep` are also written as checkpoints. Then the WiSE-FT curves of
the fine-tuning variants (Fig. 3) and of the k-shot classifiers (Fig. 17)."""),
        ("md", PARAMETERS_NOTE),
        ("code", "from wiseft.check import check_run\n"
               "from wiseft.figures.claims import what_this_run_shows\n"
                 "from wiseft.figures.tables import headline, sweep_table, table1\n"
                 "from wiseft.notebook import describe_run, markdown, open_run, run_results\n"
                 "from wiseft.steps import run_interpolation, run_kshot_sweeps, run_variant_sweeps"),
        ("params", PARAMETERS),
        ("code", OPEN_RUN),
        ("md", "The main sweeps: WiSE-FT for each fine-tuning mode, with the ensembles the profile asks for."),
        ("code", "sweeps = run_interpolation(ctx)"),
        ("md", "The WiSE-FT curves of the fine-tuning variants and of the k-shot linear classifiers (none when the "
               "profile has none)."),
        ("code", "variants = run_variant_sweeps(ctx)\nkshot = run_kshot_sweeps(ctx)"),
        ("code", f"{CHECK}\nprint(len(sweeps), 'rows from the main sweeps,', len(variants), 'from the variants,', "
                 "len(kshot), 'from the k-shot runs')"),
        ("md", """\
**Table 1 layout**: zero-shot, fine-tuned, WiSE-FT at α = 0.5, and WiSE-FT at the optimal α — one α per column,
chosen to maximise that column, as in the paper's caption (the chosen α are listed under the table)."""),
        ("code", "results = run_results(ctx)"),
        ("code", f"{CHECK}\nprint(markdown(table1(results), title='Table 1 layout (%)'))"),
        ("md", """\
**The headline**, per fine-tuning mode (percentage points): the reference gain of fine-tuning; the best α on the
mean of the reference and the average shift, and how much it beats the better endpoint; and *robustness at no
cost*, the largest average-shift gain over the fine-tuned model among the α within 1 pp of it on the reference."""),
        ("code", f"{CHECK}\nprint(markdown(headline(results), title='WiSE-FT headline (pp)'))"),
        ("md", "**Tables 4 and 5 layout**: every α of the sweep, end-to-end fine-tuning, then the linear classifier."),
        ("code", f"{CHECK}\nprint(markdown(sweep_table(results, 'e2e'), title='WiSE-FT sweep, E2E (%)'))"),
        ("code", f"{CHECK}\nprint(markdown(sweep_table(results, 'lc'), title='WiSE-FT sweep, LC (%)'))"),
        ("md", CHECK_RUN_NOTE),
        ("code", CHECK_RUN),
        ("md", WHAT_THIS_RUN_SHOWS),
        ("code", f"{CHECK}\nprint(what_this_run_shows(results, '04_interpolate'))"),
    ],
    "05_baselines.ipynb": [
        ("md", """\
# 5 · Baselines, diversity analyses, and choosing α without shift data

The paper's appendix asks whether something simpler than weight-space ensembling would do (Figs. 10–13): a
**regulariser toward the zero-shot weights** during fine-tuning (an L2-SP-style penalty λ‖θ − θ₀‖², for E2E and for
the LC), an **exponential moving average** of the fine-tuning weights, debiased (Fig. 11) or started at θ₀ (Fig. 12),
**distillation** from the zero-shot model for the LC, and **LP-FT** (linear probe, then fine-tune; discussed in the
paper, run here). None reaches the WiSE-FT curve.

It also asks why the ensemble helps (Fig. 5, App. E): the zero-shot and fine-tuned models make **different
mistakes** — prediction diversity, the complement of Cohen's kappa and of the CKA of their features, how often one
overrides the other at α = 0.5, and how confident each is. Those measures go to `analyses.csv`.

Finally, the optimal α of Table 1 is chosen on the very data it is reported on. Without shift data, the kit chooses α
on the reference set's **held-out split** and reports it beside the paper's default α = 0.5 (App. B finds the optimum
only 0–0.4 pp better)."""),
        ("md", PARAMETERS_NOTE),
        ("code", "from wiseft.figures.claims import what_this_run_shows\n"
                 "from wiseft.notebook import describe_run, markdown, open_run, run_results\n"
                 "from wiseft.steps import choose_alpha, run_analyses, run_baselines\n"
                 "from wiseft.summaries import analyses_summary, baselines_summary"),
        ("params", PARAMETERS),
        ("code", OPEN_RUN),
        ("md", "Train and score the baselines of `baselines.methods` (each over its grid of λ, decays or α)."),
        ("code", "baselines = run_baselines(ctx)"),
        ("md", "One row per baseline: how many settings were tried, the best shift average among them (%) and its "
               "reference accuracy, beside the best of the WiSE-FT curve in the same mode."),
        ("code", "results = run_results(ctx)"),
        ("code", f"{CHECK}\nprint(markdown(baselines_summary(results), title='Baselines, best setting each (%)'))"),
        ("md", "The diversity measures between the zero-shot and the fine-tuned model, per dataset "
               "(`analyses.csv`, drawn in Fig. 5)."),
        ("code", "analyses = run_analyses(ctx)"),
        ("md", "Averaged over the datasets, in %: how differently the two models of each comparison behave. The "
               "control is two linear classifiers trained on random halves of the reference set (the paper's yardstick "
               "of how different two ordinary fine-tuned models are); the per-dataset numbers are in `analyses.csv`."),
        ("code", f"{CHECK}\nprint(markdown(analyses_summary(analyses), "
                 "title='Diversity analyses, mean over datasets'))"),
        ("md", "α chosen on the held-out split of the reference set, beside α = 0.5."),
        ("code", "choice = choose_alpha(ctx)"),
        ("code", f"{CHECK}\nprint(choice)"),
        ("md", WHAT_THIS_RUN_SHOWS),
        ("code", f"{CHECK}\nprint(what_this_run_shows(results, '05_baselines'))"),
    ],
}

# ------------------------------------------------------------------------------------------------- figures
#: Figure and table notebooks: name -> (markdown explanation, extra keyword arguments of ``draw`` as source text).
FIGURES = {
    "fig1": ("""\
Each point is a model: x is accuracy on the reference distribution (ImageNet in the paper), y the average over the
distribution shifts. The axes are logit-scaled, on which models trained on the reference lie close to a line:
**effective robustness** is the height above that line. The zero-shot model sits above it; fine-tuning (E2E, and the
LC of prior work) moves right but falls toward it; the WiSE-FT curve (α from 0 to 1, α = 0.5 marked) bends above both
endpoints. The effective-robustness line, with its 95% band, is fitted to the zero-shot models (plus the models of
`figures.baseline_models` when the profile names a file); with fewer than three such models the panel says so
instead of drawing it. Points carry 95% intervals; the right panel zooms on the fine-tuned end. When the profile names
a setting of the paper (`figures.paper_table`), the paper's own points are drawn in grey beside the run's. Paper:
CLIP ViT-L/14@336px; its zoom is annotated +1.6 pp on ImageNet and +4.5 pp under shift.""",
             "baseline_models=ctx.profile.figures.baseline_models, paper_table=ctx.profile.figures.paper_table"),
    "fig3": ("""\
Hyperparameters of fine-tuning change robustness: with ViT-B/16 the paper varies the learning rate and the number of
epochs (panels a–b: at 10 epochs, learning rates 3·10⁻⁵ and 3·10⁻⁶ differ by 0.3 pp on ImageNet but up to 8 pp under
shift), the optimiser and a regulariser toward θ₀ (c), and early stopping (d); the WiSE-FT curve of each variant (e)
improves on the variant itself. Here: the profile's `finetune.variants`, each with its WiSE-FT curve.""", ""),
    "fig5": ("""\
Why the ensemble helps: the zero-shot and the fine-tuned model make different mistakes. Per dataset, the paper shows
the prediction diversity (they disagree and one of them is right) and the complement of the CKA of their features
(left), how often the zero-shot model overrides the fine-tuned one at α = 0.5 and the other way round (middle), and
the difference of their confidence gaps, the mean top-1 minus top-2 logit (right). Read from `analyses.csv`, which
the baselines step writes when `baselines.analyses` is on.""", ""),
    "fig6": ("""\
Accuracy as a function of α, one panel per dataset, with the straight line between the endpoints,
(1−α)·Acc(θ₀) + α·Acc(θ₁), and the better endpoint. The interpolated weights score above that line on every
dataset, and above both endpoints for a range of α on most: weight-space ensembling is not a trade-off between the two
models.""", ""),
    "fig7": ("""\
Fig. 1 for each shift on its own (appendix). For ImageNet-R, ImageNet-A and ObjectNet, which cover a subset of
ImageNet's classes, the x-axis is ImageNet accuracy on those classes (**class-subsampled**; extra datasets named
`<reference>-sub-<shift>`). The mini world's shifts share all ten classes, so every panel uses the reference.""",
             "baseline_models=ctx.profile.figures.baseline_models"),
    "fig9": ("""\
Further distribution shifts: ImageNet-Vid-Robust and YTBB-Robust (pm-0 against class-subsampled ImageNet),
CIFAR-10.1 and CIFAR-10.2 (against CIFAR-10), WILDS-FMoW (OOD worst-region accuracy against ID accuracy) and
WILDS-iWildCam (OOD against ID macro-F1); the paper reports gains of 2 to 23 pp under these shifts. The
`imagenet-vitl14-336` (video sets), `cifar10-vitb32`, `wilds-fmow` and `wilds-iwildcam` profiles feed it.""", ""),
    "fig10": ("""\
Ensembling in weight space against ensembling in output space. The output-space ensemble (OSE) mixes the endpoints'
logits, (1−α)·f(x; θ₀) + α·f(x; θ₁), at twice the inference cost; WiSE-FT mixes the weights and stays one model. For a
linear classifier they coincide; for E2E fine-tuning the paper finds the weight-space curve at least as good (App. F
relates the two in a linearised regime). Fisher-weighted merging (the official code's `--fisher`, not in the paper) is
drawn when the profile computes it.""", ""),
    "fig11": ("""\
An exponential moving average of the fine-tuning weights, debiased (started at 0 and divided by 1 − βᵀ), for several
decays β, against the WiSE-FT curve: averaging along one fine-tuning run does not reach WiSE-FT's frontier.""", ""),
    "fig12": ("""\
An exponential moving average started at the zero-shot weights θ₀ (biased toward them): varying the decay moves the
model along the WiSE-FT curve — both are weighted averages of θ₀ and fine-tuned weights.""", ""),
    "fig13": ("""\
Alternatives to WiSE-FT for the linear classifier and beyond: random interpolation (each example classified by θ₀
with probability 1 − α, else by θ₁), an ensemble of softmax probabilities, distillation from the zero-shot model,
regularisation toward the zero-shot weights (L2-SP style, for the LC and E2E), and LP-FT. None reaches the WiSE-FT
curve.""", ""),
    "fig16": ("""\
Accuracy against α on each transfer dataset (E2E) of the `transfer` suite: CIFAR-10 and -100, Stanford Cars, DTD,
SUN397 and Food-101. Even on the reference distribution alone, WiSE-FT at its best α beats standard fine-tuning (paper:
+0.6 to +2.8 pp).""", ""),
    "fig17": ("""\
The low-data regime: linear classifiers trained on k examples per class (`finetune.lc.shots`; the paper uses
k ∈ {1, 5, 10, 25, 50}), each interpolated with the zero-shot head. y is the gain over the zero-shot model and over
the k-shot classifier, for α ∈ {0, 0.25, 0.5, 0.75, 1} and the optimal α. With few examples the fine-tuned classifier
can fall below zero-shot; WiSE-FT does not.""", ""),
    "table1": ("""\
Zero-shot, fine-tuned (LC and E2E), and WiSE-FT at α = 0.5 and at the **optimal α**: a single α per column, chosen to
maximise that column (the caption's protocol; the chosen α are listed under the table). Columns: the reference, each
shift, the average over the shifts, and the average of the reference and that average. Paper: CLIP ViT-L/14@336px.""",
               ""),
    "sweep_table": ("""\
The full α sweep, α from 0 to 1 in steps of 0.05, every column, for end-to-end fine-tuning and for the linear
classifier: Table 4 (ViT-L/14@336px) and Table 5 (ViT-B/16) of the paper. Written as `sweep_table_e2e` and
`sweep_table_lc`.""", ""),
    "table6": ("""\
The numbers behind Fig. 9: each further shift in its own metric (accuracy, worst-region accuracy, macro-F1, pm-0)
after its reference, zero-shot, fine-tuned, WiSE-FT at α = 0.5 and at the optimal α (chosen per row); the video sets
with the linear classifier, the others fine-tuned end to end, as in the paper.""", ""),
    "table2": ("""\
Transfer learning: standard fine-tuning against WiSE-FT at α = 0.5 and at the optimal α, on each reference dataset of
the `transfer` suite, with the gains in pp (paper: +0.8 to +3.3 pp).""", ""),
}

#: Stored paper tables each table notebook compares with (``wiseft.figures.paper``), by name prefix.
PAPER_TABLES = {"table1": ("table1",), "sweep_table": ("table4", "table5"), "table6": ("table6",),
                "table2": ("table2",)}

# -------------------------------------------------------------------------------------------------- course
COURSE = [
    ("md", """\
# WiSE-FT by hand: interpolate the weights, sweep α, read the robustness curves

In this assignment you implement the heart of WiSE-FT yourself, on the offline `mini` world (a small CLIP on digit
images; the reference task is printed digits, the shifts are handwriting, other fonts, colours, rotations, sketches
and noise). wiseft has already produced the two models you need:

- **θ₀**, the zero-shot classifier (`checkpoints/zeroshot`), and
- **θ₁**, the same network fine-tuned end to end on the reference task (`checkpoints/finetuned_e2e`).

WiSE-FT (Wortsman et al., CVPR 2022, Eq. 1) predicts with the weights

$$\\theta_\\alpha = (1-\\alpha)\\cdot\\theta_0 + \\alpha\\cdot\\theta_1, \\qquad \\alpha\\in[0,1].$$

Your tasks: **(1)** write θ_α; **(2)** sweep α and score each θ_α on the reference set and every
shift; **(3)** read the curves of the shifts fine-tuning hurts, and their average, and explain them. Write your code
between the marked lines; each check cell compares your numbers with wiseft's and prints the most likely mistake
first.

*Before you start*: the run `runs/mini` must exist — run `wiseft run --profile mini` (or notebooks 01–04). The
notebook takes about a minute on a laptop CPU."""),
    ("code", "import pandas as pd\n"
             "from wiseft.course import (CHECK_ALPHAS, SHIFT_AVERAGE, accuracy, check_interpolation,\n"
             "                           check_robustness, check_sweep, losing_shifts, plot_sweep, preload,\n"
             "                           reference_sweep)\n"
             "from wiseft.notebook import describe_run, open_run, show\n"
             "from wiseft.steps import eval_sets, load_endpoint\n"
             "from wiseft.steps.common import classifier_transform"),
    ("params", PARAMETERS),
    ("code", OPEN_RUN),
    ("md", """\
## The two endpoints

`load_endpoint` reads a checkpoint of the run (and says which step to run when it is missing). A state dict maps
parameter names to tensors. Careful: `model.state_dict()` returns the model's own tensors, and loading other weights
into that model overwrites them — so θ₀ and θ₁ come from their own copies and `model` is a third, working copy."""),
    ("code", "zeroshot, _ = load_endpoint(ctx, 'zeroshot')\nfinetuned, _ = load_endpoint(ctx, 'finetuned_e2e')\n"
             "model, _ = load_endpoint(ctx, 'zeroshot')\n"
             "theta_0, theta_1 = zeroshot.state_dict(), finetuned.state_dict()"),
    ("code", f"{CHECK}\nprint(len(theta_0), 'tensors,', sum(t.numel() for t in theta_0.values()), "
             "'weights per model')"),
    ("md", "The evaluation sets: the reference and every shift of the profile, with the model's preprocessing, "
           "decoded once and held in memory (`preload`) so the sweep is quick. `accuracy(model, eval_set)` scores a "
           "model on one of them."),
    ("code", "sets = [preload(s) for s in eval_sets(ctx.profile, classifier_transform(model))]"),
    ("code", f"{CHECK}\nprint([(s.name, s.role, len(s)) for s in sets])"),
    ("md", """\
## Task 1 · Interpolate the weights

Build `thetas`: for every α in `CHECK_ALPHAS` (0, 0.25, 0.8 and 1 — lopsided values, where a mix that runs the
wrong way shows), `thetas[alpha]` is θ_α as a new state dict, with the same keys as `theta_0` and each tensor mixed
as in the equation above. Mix **every** entry — the image encoder and the classification head — and do not change
`theta_0` or `theta_1`."""),
    ("code", "### BEGIN SOLUTION\n"
             "thetas = {alpha: {k: (1 - alpha) * theta_0[k] + alpha * theta_1[k] for k in theta_0}\n"
             "          for alpha in CHECK_ALPHAS}\n"
             "### END SOLUTION"),
    ("code", f"{CHECK}\nprint(check_interpolation(thetas, theta_0, theta_1))"),
    ("md", """\
## Task 2 · Sweep α

For every α in `alphas`, build θ_α as in Task 1, load it into `model` (`model.load_state_dict(...)`) and score it
on each evaluation set. Store the results as `student[alpha][s.name] = accuracy` (a fraction)."""),
    ("code", "alphas = [round(0.1 * i, 1) for i in range(11)]\nstudent = {}\n### BEGIN SOLUTION\n"
             "for alpha in alphas:\n"
             "    model.load_state_dict({k: (1 - alpha) * theta_0[k] + alpha * theta_1[k] for k in theta_0})\n"
             "    student[alpha] = {s.name: accuracy(model, s, device=ctx.device) for s in sets}\n### END SOLUTION"),
    ("md", "**Check**: your numbers against wiseft's own sweep of this run (within 0.5 pp)."),
    ("code", "reference = reference_sweep(ctx, alphas, [s.name for s in sets])"),
    ("code", f"{CHECK}\nprint(check_sweep(student, reference))"),
    ("md", """\
## Task 3 · Where fine-tuning hurts

Not every shift loses accuracy under fine-tuning: in the `mini` world, *other fonts* are close enough to the printed
reference digits that the fine-tuned model gains there too. Robustness is about the shifts it *loses* on — below are
the ones where wiseft's fine-tuned model (α = 1) scores under the zero-shot one (α = 0): handwriting and rotations
in `mini` — and about the average over **all** shifts, the paper's summary number (Table 1, "avg. shifts").

Build `table`: your sweep in **%**, one row per α (the index) and one column per evaluation set (`s.name`), plus a
column `SHIFT_AVERAGE` holding the mean over all the shifts in `shifts` at each α. Then `best`: for the reference set
`ref_name`, each shift in `shown` and `SHIFT_AVERAGE`, the α where that column is highest (`{name: alpha}`)."""),
    ("code", "shown = losing_shifts(reference)\nshifts = [s.name for s in sets if s.role == 'shift']\n"
             "ref_name = sets[0].name"),
    ("code", f"{CHECK}\nprint('shifts that lose under fine-tuning, shown:', shown, '| averaged:', shifts)"),
    ("code", "### BEGIN SOLUTION\ntable = 100 * pd.DataFrame(student).T\n"
             "table[SHIFT_AVERAGE] = table[shifts].mean(axis=1)\n"
             "best = {name: float(table[name].idxmax()) for name in [ref_name, *shown, SHIFT_AVERAGE]}\n"
             "### END SOLUTION"),
    ("code", f"{CHECK}\nprint(check_robustness(table, best, reference, shown))"),
    ("md", "Your curves (thin lines with dots) over wiseft's (wide pale lines): when your sweep is right, each runs "
           "along the middle of its band."),
    ("code", "show(plot_sweep(table, reference, [ref_name, *shown, SHIFT_AVERAGE],\n"
             "                title=f'WiSE-FT on the {ctx.profile.name} run: yours (dots) and wiseft (pale)'))"),
    ("md", """\
**Questions.**

1. Where is the best α on the reference set, where on the shifts fine-tuning hurts, and where on the shift average?
   Why are they different?
2. The shift average at its best α lies above **both** endpoints and above the straight line between them (paper
   Fig. 6). Why can averaging the *weights* do better than either model?
3. What would you choose as α if you could not look at any shifted data? (The second assignment,
   `wiseft_choose_alpha`, tries it.)

### BEGIN SOLUTION
1. On the reference set accuracy climbs from 80 % (zero-shot) to about 99.7 % and is flat from α ≈ 0.7 on: the best α
   is near 1. On handwriting and rotations it is near 0 (α ≈ 0–0.1): they lose 10–14 pp under fine-tuning, and every
   step toward θ₁ costs accuracy there. The shift average peaks in between, at α ≈ 0.3 (about 67 %, against 66 % for
   θ₀ and 59 % for θ₁): the reference set rewards what fine-tuning learns about printed digits, the shifts reward what
   the zero-shot model knew about digits in general (paper Tables 4–5: the shift average peaks near α ≈ 0.3–0.5).
2. The two models make different mistakes (paper Fig. 5): for models fine-tuned from the same start, averaging the
   weights behaves much like averaging the outputs (App. F), so on an example where one model is confident and right
   it can outvote the other. Accuracy of the averaged weights is not the average of the accuracies, so the curve
   bends above the line.
3. The paper's default α = 0.5, or the best α on a held-out split of the *reference* data — which, as here, tends to
   lie near 1 and gives back much of the robustness.
### END SOLUTION"""),
]

COURSE_CHOOSE_ALPHA = [
    ("md", """\
# Choosing α without shift data

The paper's "optimal α" is picked on the very set it reports (Table 1), which nobody can do for a shift they have not
seen. What can a practitioner do? Take the paper's default, α = 0.5, or choose α on data they *do* have: a
**held-out split of the reference distribution**. In this assignment you do the second, on the `mini` run, and then
look at what that choice gives on the shifts — data you were not allowed to use to choose.

Your tasks: **(1)** sweep α on the held-out split only; **(2)** choose α by the held-out rule; **(3)** score the
chosen α, the default α = 0.5 and both endpoints on the reference test set and every shift; **(4)** explain what you
see. Each check cell compares your numbers with wiseft's and prints the most likely mistake first.

*Before you start*: run the first assignment (`wiseft_assignment`), or at least know θ_α = (1 − α)·θ₀ + α·θ₁;
the run `runs/mini` must exist (`wiseft run --profile mini`). The notebook takes under a minute on a laptop CPU."""),
    ("code", "import pandas as pd\n"
             "from wiseft.course import (OUTCOME_ROWS, SHIFT_AVERAGE, accuracy, check_choice, check_outcome, "
             "check_sweep,\n                           plot_choice, preload, reference_sweep)\n"
             "from wiseft.interpolation import interpolate_state_dicts\n"
             "from wiseft.notebook import describe_run, open_run, show\n"
             "from wiseft.steps import eval_sets, load_endpoint\n"
             "from wiseft.steps.common import classifier_transform"),
    ("params", PARAMETERS),
    ("code", OPEN_RUN),
    ("md", "θ₀ (zero-shot) and θ₁ (fine-tuned end to end), and a working copy `model`; "
           "`interpolate_state_dicts(theta_0, theta_1, alpha)` is wiseft's θ_α, the function you wrote in the first "
           "assignment."),
    ("code", "zeroshot, _ = load_endpoint(ctx, 'zeroshot')\nfinetuned, _ = load_endpoint(ctx, 'finetuned_e2e')\n"
             "model, _ = load_endpoint(ctx, 'zeroshot')\n"
             "theta_0, theta_1 = zeroshot.state_dict(), finetuned.state_dict()"),
    ("md", "The evaluation sets, held in memory: the reference test set, every shift, and the reference's held-out "
           "split `held` (images of the reference distribution that neither fine-tuning nor the reported numbers "
           "use)."),
    ("code", "sets = [preload(s) for s in eval_sets(ctx.profile, classifier_transform(model), heldout=True)]\n"
             "held = next(s for s in sets if s.role == 'heldout')\n"
             "test_sets = [s for s in sets if s.role != 'heldout']\nref_name = test_sets[0].name"),
    ("code", f"{CHECK}\nprint('held-out:', held.name, len(held), '| test:', [s.name for s in test_sets])"),
    ("md", "wiseft's own numbers of this run, to check yours against, and the α grid wiseft evaluated."),
    ("code", "reference = reference_sweep(ctx, [round(0.05 * i, 2) for i in range(21)], [s.name for s in sets])\n"
             "alphas = sorted(reference['alpha'].round(4).unique())"),
    ("code", f"{CHECK}\nprint(len(alphas), 'values of α from', alphas[0], 'to', alphas[-1])"),
    ("md", """\
## Task 1 · Sweep α on the held-out split only

For every α in `alphas`, load θ_α into `model` and score it on `held` — and nothing else. Store
`heldout[alpha] = {held.name: accuracy}`."""),
    ("code", "heldout = {}\n### BEGIN SOLUTION\n"
             "for alpha in alphas:\n"
             "    model.load_state_dict(interpolate_state_dicts(theta_0, theta_1, alpha))\n"
             "    heldout[alpha] = {held.name: accuracy(model, held, device=ctx.device)}\n### END SOLUTION"),
    ("code", f"{CHECK}\nprint(check_sweep(heldout, reference, datasets=[held.name]))"),
    ("md", """\
## Task 2 · Choose α

Near its top the held-out curve is flat, and differences smaller than the split's sampling noise mean nothing. The
rule (wiseft's `select_alpha`): take the best held-out accuracy p; every α whose accuracy is within one standard
error, √(p(1 − p)/n) with n = `len(held)`, of p counts as a tie; among the ties choose the **smallest** α — the one
closest to the zero-shot model. Set `chosen` to that α."""),
    ("code", "### BEGIN SOLUTION\ncurve = pd.Series({alpha: row[held.name] for alpha, row in heldout.items()})\n"
             "best = curve.max()\nse = (best * (1 - best) / len(held)) ** 0.5\n"
             "chosen = float(curve[curve >= best - se].index.min())\n### END SOLUTION"),
    ("code", f"{CHECK}\nprint(check_choice(chosen, reference, held.name))"),
    ("md", """\
## Task 3 · What the choice gives under shift

Now — and only now — look at the shifts. For each row of `OUTCOME_ROWS` (the zero-shot model α = 0, the default
α = 0.5, your held-out choice, whose α is `None` there, and the fine-tuned model α = 1) score θ_α on every set of
`test_sets`. Build `outcome`: one row per name, with the columns `'alpha'`, `ref_name` (the reference test accuracy,
in %) and `SHIFT_AVERAGE` (the mean accuracy over the shifts, in %)."""),
    ("code", "rows = {}\n### BEGIN SOLUTION\n"
             "for name, alpha in OUTCOME_ROWS.items():\n"
             "    alpha = chosen if alpha is None else alpha\n"
             "    model.load_state_dict(interpolate_state_dicts(theta_0, theta_1, alpha))\n"
             "    acc = {s.name: 100 * accuracy(model, s, device=ctx.device) for s in test_sets}\n"
             "    shift_avg = pd.Series([acc[s.name] for s in test_sets if s.role == 'shift']).mean()\n"
             "    rows[name] = {'alpha': alpha, ref_name: acc[ref_name], SHIFT_AVERAGE: shift_avg}\n"
             "### END SOLUTION\noutcome = pd.DataFrame(rows).T"),
    ("code", f"{CHECK}\nprint(check_outcome(outcome, chosen, reference))"),
    ("code", f"{CHECK}\nprint(outcome.round(1).to_string())"),
    ("md", "Your four models (markers) on wiseft's WiSE-FT curve: reference test accuracy against the shift average, "
           "α running from 0 to 1 along the grey line."),
    ("code", "show(plot_choice(outcome, reference,\n"
             "                  title=f'Choosing α without shift data: the {ctx.profile.name} run'))"),
    ("md", """\
## Task 4 · Questions

1. Which α did the held-out split choose? What does it give on the shift average, against α = 0.5 and against the
   best α on the shifts (the first assignment's Task 3)?
2. Why does a split of the *reference* distribution push α toward the fine-tuned end?
3. Is choosing α on held-out reference data pointless, then? When would you use it, and when the default 0.5?

### BEGIN SOLUTION
1. α = 0.8: the held-out accuracy is 99.5 % there, within one standard error (0.2 pp) of the best (99.6 % at α = 0.95 and 1).
   It gives 99.4 % on the reference test set and 62.2 % on the shift average — 3.8 pp below α = 0.5 (98.1 % and
   66.0 %) and 5.2 pp below the best α on the shifts (α ≈ 0.3, 67.4 %), for 1.3 pp more on the reference set.
2. The held-out split measures exactly what fine-tuning optimises: accuracy on the reference distribution. It rises
   almost monotonically toward θ₁, so it can only reward moving away from the zero-shot model, whose strength —
   accuracy on *other* distributions — it cannot see. The tie rule (smallest α within noise) takes back a little of
   that, not more.
3. No: it is the honest way to pick α when the reference accuracy is what matters, and it protects against an α that
   is bad even on the reference distribution. But it is blind to robustness; when the deployment distribution may
   shift, the paper's default α = 0.5 (App. B: within 0–0.4 pp of the optimum on average) keeps most of the
   reference gain and much more of the robustness — here 98.1 % and 66.0 %.
### END SOLUTION"""),
]
