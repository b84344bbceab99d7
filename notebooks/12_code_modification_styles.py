# %% [markdown]
# # 12 · Random and purposeful code modification: style as texture primitives (Xia et al. 2016, RMCI and PMCI figures)
#
# [← 11 · feature map inversion](11_feature_map_inversion.ipynb) · [index](index.ipynb) · [13 · explanatory graph →](13_explanatory_graph.ipynb)
#
# If every filter stands for a texture (notebook 11), an image's *style* could be how its code's
# energy is shared among filters. Xia et al. test this two ways:
#
# * **RMCI** (random modification): keep each channel's spatial pattern and the layer's total
#   energy, but reallocate the energy across channels in random proportions,
#   ψ(Φ)_c = S · r_c · Φ_c / s_c with Σ r_c = 1. The paper's text keeps every neuron's **on/off
#   state** (positive proportions; here drawn uniformly from the simplex). The authors' released
#   code instead draws v_c ~ N(3, 1000²), r = v / Σv: proportions that are signed and can be huge, so
#   about half the channels get **negative targets**, which no ReLU output can reach. Both are
#   shown, labelled.
# * **PMCI** (purposeful modification): style transfer whose style term matches only the
#   **channel sums** Φ·1 of the style layers (content relu2_2, α = 10, β = 1), beside Gatys et al.'s
#   **Gram-matrix** loss with the same weights. The paper's style layers are relu1_1 … relu5_1 (the
#   release stops at relu4_1; `style_layers = "release"` runs that). If channel energies alone carry
#   style, the two should look alike — the paper's account of why Gram matrices capture style (the
#   Gram diagonal *is* each channel's squared energy).
#
# **Model** as in notebook 11: offline the HED VGG16 conv stack (edge-fine-tuned) with average
# pooling; `profile = "paper"` torchvision's ImageNet VGG19. **Paintings**: Van Gogh, *The Starry
# Night* (1889) and Munch, *The Scream* (1893), both public domain, in the copies Debian ships
# (`data/paintings/`, see data/README.md).

# %% tags=["parameters"]
profile = "offline"  # "offline" (VGG16-HED conv stack, edge-tuned) or "paper" (VGG19, ImageNet) {offline, paper}
model = ""  # zoo model name; empty: the default model for task invert
image = "chelsea"  # content photo (data/images)
paintings = ["starry_night"]  # styles, from data/paintings (the full preset adds scream) {starry_night, scream} [1..2]
size = None  # image side in px; None: the profile default (offline 48, paper 512 as the authors) [16..1024]
rmci_layers = ["relu1_1", "relu3_1", "relu5_1"]  # layer names; the full preset runs relu1_1 ... relu5_1 [1..16]
draws = 2  # random modifications per layer and variant [1..16]
style_layers = "paper"  # "paper" (relu1_1 ... relu5_1) or "release" (relu1_1 ... relu4_1) {paper, release}
recipe = "modern"  # optimiser: Adam + TV prior, or the authors' SGD schedule {modern, authors}
steps = 30  # optimisation steps for RMCI [1..2000]
style_steps = 100  # optimisation steps for PMCI and Gatys (enough for the Gatys Gram error to level off) [4..2000]
seed = 0  # start images and random draws [0..]
dpi = 100  # resolution of saved figures [10..1200]
interactive = True  # widget explorer (papermill sets False)

# %%
import zfhelpers
from zfhelpers.claims import table
from zfhelpers.inversion import claims, rmci, setup, style
from zfhelpers.notebook import inversion_figures as figures
from zfhelpers.notebook import widgets

run = zfhelpers.notebook.start("12_code_modification_styles", globals())
inv = setup.load(profile, model, [image], size=size, recipe=recipe, steps=steps, paintings=paintings)
content = inv.photos[image]
print(inv.describe())

# %% [markdown]
# ## RMCI: the paper's text beside the authors' release
# One batch per layer: `draws` seeded modifications per variant. Each panel says how much of its
# modified code the image reproduces, ⟨Φ(x*), ψ⟩ / ‖ψ‖² ("match"; about 0 means nothing of the
# target, as for a flat grey image).

# %%
study = rmci.rmci_study(
    inv.model,
    content.tensor,
    layers=rmci_layers,
    draws=draws,
    recipe=inv.recipe,
    seed=seed,
    checkpoint_dir=zfhelpers.paths.build_dir() / "inversions",
    name=content.name,
)
for c in claims.rmci_claims(study):
    run.claim(c)
fig = figures.rmci_grid(study, content.display, title="Random modification of code, inverted (RMCI)")
_ = run.save_figure(fig, f"12_rmci_{inv.model.name}", dpi=dpi, **inv.stamp())

# %% [markdown]
# ## PMCI vs Gatys
# Same content, same start image, same weights and optimiser; only the style statistic differs:
# channel sums (C numbers per layer) vs Gram matrices (C² numbers per layer). Every (painting,
# method) pair is one image of a single batch.

# %%
srec = style.style_recipe(inv.recipe, style_steps)
cmp = style.compare_styles(
    inv.model,
    content.tensor,
    {p: s.tensor for p, s in inv.paintings.items()},
    layers=style_layers,
    recipe=srec,
    seed=seed,
    checkpoint_dir=zfhelpers.paths.build_dir() / "inversions",
)
style_stamp = inv.stamp(srec)
fig = figures.style_grid(
    cmp,
    content.display,
    {p: s.display for p, s in inv.paintings.items()},
    title=f"Style transfer: content {style.CONTENT_LAYER}, style {', '.join(cmp.layers)}, alpha 10, beta 1",
)
_ = run.save_figure(fig, f"12_pmci_vs_gatys_{inv.model.name}", dpi=dpi, **style_stamp)

# %% [markdown]
# ## What was measured
# Left: each method's own statistic during the run — for Gatys the Gram error curve, which shows
# whether it converged. Right: both statistics measured on both results (and on the content photo,
# the starting gap): the relative error ‖stat(result) − stat(painting)‖ / ‖stat(painting)‖ per
# style layer. "Each method lowers its own statistic more" is the check of the set-up; how much of
# Gatys' Gram match PMCI reaches with channel sums alone is the question the paper asks.

# %%
for c in claims.style_claims(cmp, paper_net=claims.paper_network(inv.model)):
    run.claim(c)
fig = figures.style_errors_figure(cmp)
_ = run.save_figure(fig, f"12_style_statistics_{inv.model.name}", dpi=dpi, **style_stamp)

# %% [markdown]
# ## Claims
# Every measured statement of this notebook with its interval or test and its verdict (the rule is
# in `zfhelpers.inversion.claims`). The committed notebook shows the quick defaults; README and
# `figures/` hold the full preset (`python -m zfhelpers claims`).

# %%
print(table.text({run.notebook: run.results}))

# %% [markdown]
# ## Explore (interactive)
# RMCI of any layer: one more seeded draw, in either variant.

# %% tags=["nbval-ignore-output"]
explorer = widgets.explore(
    interactive, lambda: figures.rmci_explorer(inv.model, content, recipe=inv.recipe, layers=rmci_layers, seed=seed)
)
