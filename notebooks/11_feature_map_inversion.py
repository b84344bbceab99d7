# %% [markdown]
# # 11 · Feature Map Inversion: every filter's texture (Xia et al. 2016, arXiv 1608.04170, FMI figure)
#
# [← 10 · cam](10_cam.ipynb) · [index](index.ipynb) · [12 · code modification styles →](12_code_modification_styles.ipynb)
#
# **Code inversion** (Mahendran & Vedaldi 2015) looks for an image whose code Φ_l(x) at a layer
# matches a target. Xia et al. change the target first: **FMI** keeps the image's code but moves
# all of it into **one filter k** — ψ(Φ)_k = Σ_c Φ_c, every other channel 0 — "enhance the assigned
# feature map and weaken the others". The image that best produces such a code shows what filter
# k responds to, spread over the whole picture: a texture. Their claims: *every filter extracts a
# specific texture*, and *textures from higher layers contain more colours and more intricate
# structures*. Their figure is a grid, layers relu1_2 … relu5_2 × filters 0–4, on one photo.
#
# Here the same filters are inverted on **two photos**, so "specific" can be tested: is a filter's
# texture on one photo more like its own on the other photo than like the other filters'? Each
# layer's **plain inversion** (the unmodified code) is the control for "more colours": inverting a
# deep layer may add colour whatever the target.
#
# **Model.** Offline: the **VGG16 conv stack of HED** (ImageNet-initialised, then fine-tuned for
# *edge detection*), with its max-pools replaced by average pools as the authors did on VGG19.
# Its upper layers are edge-tuned, so their textures are not ImageNet's and the claims about depth
# cannot be refuted on it (the verdicts say so). `profile = "paper"` uses torchvision's ImageNet
# VGG19 with average pooling, by default at the authors' 512 px.
#
# **Optimiser.** `recipe = "modern"` (Adam, normalised code loss, TV prior, 1-px jitter; fits a CPU)
# or `"authors"` (their SGD schedule, TV denoising afterwards). Each layer's plain inversions and
# FMIs, for both photos, are one batch.

# %% tags=["parameters"]
profile = "offline"  # "offline" (VGG16-HED conv stack, edge-tuned) or "paper" (VGG19, ImageNet) {offline, paper}
model = ""  # zoo model name; empty: the default model for task invert
images = ["chelsea", "coffee"]  # content photos (data/images or paths); the same filters are inverted on each [2..4]
size = None  # image side in px; None: the profile default (offline 48, paper 512 as the authors) [16..1024]
layers = ["relu1_2", "relu3_2", "relu5_2"]  # layer names, first to last (full preset: relu1_2 ... relu5_2) [2..16]
n_filters = 5  # filters per layer: the first ones that fire on every photo (the paper shows 0-4) [2..16]
recipe = "modern"  # optimiser: Adam + TV prior, or the authors' SGD schedule {modern, authors}
steps = 25  # optimisation steps per inversion (the full preset uses more) [1..2000]
seed = 0  # start images and random draws [0..]
dpi = 100  # resolution of saved figures [10..1200]
interactive = True  # widget explorer (papermill sets False)

# %%
import torch

import zfhelpers
from zfhelpers.claims import table
from zfhelpers.course import inversion as lessons
from zfhelpers.inversion import claims, fmi, setup
from zfhelpers.notebook import inversion_figures as figures
from zfhelpers.notebook import widgets

run = zfhelpers.notebook.start("11_feature_map_inversion", globals())
inv = setup.load(profile, model, images, size=size, recipe=recipe, steps=steps)
stamp = inv.stamp()
print(inv.describe())

# %% [markdown]
# ## Exercise 1 · Write FMI's ψ
# Given a code `code` (B×C×H×W, one layer's feature maps) and a filter index `k`, return the FMI
# target: at every position, the sum over **all** channels goes into channel `k`; every other
# channel is 0. Replace the `raise` and run the cell; the checker compares your ψ with the
# package's (`zfhelpers.inversion.codes.feature_map`).


# %%
def my_psi(code, k):
    raise NotImplementedError  # your code here


# NBVAL_CHECK_OUTPUT
_ = zfhelpers.course.check("11.fmi_psi", my_psi)

# %% [markdown]
# ## One batch per layer: plain inversions and FMIs on both photos
# The filters are the first `n_filters` (index order) that fire somewhere on every photo — chosen
# from the photos alone, before any inversion. FMI asks filter k to carry the whole layer's energy,
# so an inversion that reached k's texture makes k fire *more* than on the photo. An FMI is counted
# as **collapsed** when k peaks *lower* on the result than on the photo: the optimiser has not
# reached k's texture (with k silent everywhere its ReLU passes no gradient, and the optimiser can
# only shrink the other channels; `zfhelpers.inversion.fmi` explains the rule). Collapsed FMIs are
# counted, framed in red, and kept in every measurement below.

# %%
x = torch.cat([s.tensor for s in inv.photos.values()])
study = fmi.fmi_study(
    inv.model,
    x,
    layers=layers,
    n_filters=n_filters,
    names=list(inv.photos),
    recipe=inv.recipe,
    seed=seed,
    checkpoint_dir=zfhelpers.paths.build_dir() / "inversions",
)
print(fmi.summary(study))

# %% [markdown]
# ## The FMI grid
# One block per layer, one row per photo: the photo, the plain inversion (what the whole code
# keeps), then one column per filter. Read a column from top to bottom: the same filter on two
# different photos.

# %%
fig = figures.fmi_grid(
    study, {n: s.display for n, s in inv.photos.items()}, title=f"Feature map inversion, {inv.model.name}"
)
_ = run.save_figure(fig, f"11_fmi_grid_{inv.model.name}", dpi=dpi, **stamp)

# %% [markdown]
# ## Is each texture specific to its filter?
# A texture is summarised without the network (which would be circular: these images were made
# for its features) by three distributions: opponent colours, gradient orientations and spatial
# scales (`zfhelpers.analysis.texture.descriptor`). For each layer, the distance between every
# filter's FMI on the first photo and every filter's on the second gives a K×K matrix. A filter
# is **identified** when its nearest texture on the other photo is its own — in both directions.
#
# ### Exercise 2 · Count the identifications
# `d` is such a K×K matrix (row i: filter i on the first photo; column j: filter j on the second).
# Return how many filters are identified, counting rows and columns (0 … 2K).


# %%
def my_identify(d):
    raise NotImplementedError  # your code here


# NBVAL_CHECK_OUTPUT
_ = zfhelpers.course.check("11.identify", my_identify)

# %% [markdown]
# The reveal: the share identified, against chance (1/K) and against shuffled filter labels.

# %%
claim, spec = claims.specificity_claim(study, paper_net=claims.paper_network(inv.model), seed=seed)
run.claim(claim)
fig = figures.specificity_figure(spec, tuple(inv.photos), {layer: s.filters for layer, s in study.items()})
_ = run.save_figure(fig, f"11_fmi_specificity_{inv.model.name}", dpi=dpi, **stamp)

# %% [markdown]
# ## Predict before you look: more colours higher up?
# Xia et al. say textures from higher layers contain more colours. Before running the next cells,
# write down your prediction for **this** network: will the last layer's FMI textures be more
# colourful than the first layer's — `"more"`, `"fewer"` or `"about the same"`? And would the
# plain inversion of the same layers rise as much (if so, the colour comes from inverting a deep
# layer, not from the filter)?

# %%
my_prediction = None  # "more", "fewer" or "about the same"

# %% [markdown]
# ## The reveal: colour and structure by depth
# Over every FMI image of a layer (collapsed ones included): **colourfulness** (Hasler &
# Süsstrunk), **spectral entropy** of the luminance (broadband, "intricate" structure → high) and
# **orientation coherence** (one orientation everywhere → 1). Orange: the plain inversions. Each
# claim compares the last layer with the first, with a 95 % bootstrap interval.

# %%
paper_net = claims.paper_network(inv.model)
values = claims.texture_values(study)
depth = {c.id: run.claim(c) for c in claims.depth_claims(study, paper_net=paper_net, seed=seed)}
lessons.reveal_colour_prediction(my_prediction, depth["11.colour_rise.fmi"], depth["11.colour_rise.beyond_plain"])
fig = figures.texture_depth_figure(study, values, seed=seed)
_ = run.save_figure(fig, f"11_fmi_texture_metrics_{inv.model.name}", dpi=dpi, **stamp)

# %% [markdown]
# ## Claims
# Every measured statement of this notebook with its interval or test and its verdict (the rule is
# in `zfhelpers.inversion.claims`). The committed notebook shows the quick defaults; README and
# `figures/` hold the full preset (`python -m zfhelpers claims`).

# %%
for c in claims.collapse_claims(study):
    run.claim(c)
print(table.text({run.notebook: run.results}))

# %% [markdown]
# ## Explore (interactive)
# Any layer and filter: its FMI on the first photo, inverted on demand with the same recipe.

# %% tags=["nbval-ignore-output"]
explorer = widgets.explore(
    interactive,
    lambda: figures.fmi_explorer(
        inv.model, next(iter(inv.photos.values())), recipe=inv.recipe, layer=layers[len(layers) // 2], seed=seed
    ),
)
