# %% [markdown]
# # 08 · Correspondence analysis (ZF §4.3, Table 1, Fig. 8)
# [← 07 · occlusion](07_occlusion.ipynb) · [index](index.ipynb) · [09 · guided_backprop →](09_guided_backprop.ipynb)
#
# Does a CNN establish correspondence between the same part in different images, without being
# told about parts? ZF occlude the **right eye, left eye or nose** in five frontal dog images (and
# random regions for comparison), take the change of the feature vector ε = x − x̃ at layer 5 and
# layer 7, and measure how consistently its **signs** agree across images (Δ, lower = more
# consistent; `zfhelpers.analysis.correspondence`, normalisation stated there). Their Table 1: the
# parts get a lower Δ than random regions at layer 5; at layer 7 the two are much closer.
#
# **What stands in here.** No licensed frontal dog photos with part annotations can be had offline.
# The five images are aligned **human faces** from *Labeled Faces in the Wild* as shipped inside
# scikit-image (`data.lfw_subset()`, 25×25 grayscale, upsampled to 224×224 — blurry), with eye and
# nose boxes committed in `data/faces/lfw_subset_parts.json`. ImageNet has no "person" class, so the
# network sees faces only as context; the question is still whether occluding *the same part*
# perturbs the features in the same direction. The zoo's classifier gives the layers: its
# `layer5_vector` role (MobileNetV2: the last conv block, flattened) and its `layer7` role (the
# pooled penultimate vector). On the paper profile (AlexNet: pool5 and fc7) a JSON of five annotated
# images of your own can replace the faces (`annotations`).
#
# **Chance.** Two sign vectors drawn independently with fair ±1 signs disagree on half of their
# dimensions: Δ = 0.5. In a rectified layer many features do not change at all (sign 0), which
# moves the independent-signs level; the figure draws both. The paper's question is not chance but
# the **comparison with random occlusion** of the same images, tested pair by pair.

# %% tags=["parameters"]
profile = "offline"  # "offline" (MobileNetV2) or "paper" (AlexNet)
model = ""  # zoo model; empty — the profile's classifier {"", mobilenet_v2, alexnet, vgg16, vgg19}
annotations = ""  # JSON of your own images + part boxes (see correspondence.load_annotated_folder); empty — LFW
random_draws = 5  # independent random occlusions per image (the random Δ of a pair is their mean) [1..100]
fill = 0.0  # occluder value in normalised units (0 is the dataset mean, mid grey) [-3..3]
seed = 0  # seed of the random occlusions and of the statistics [0..]
dpi = 100  # resolution of saved figures [50..300]
interactive = True  # widget explorer (papermill sets False)

# %%
from pathlib import Path

import matplotlib.pyplot as plt

import zfhelpers
import zfhelpers.course
from zfhelpers.analysis import correspondence
from zfhelpers.claims import table
from zfhelpers.notebook import correspondence_figures as figures
from zfhelpers.notebook import widgets

run = zfhelpers.notebook.start("08_correspondence", globals())
lm = zfhelpers.load_model(model, profile, task="classify")
faces = correspondence.load_part_images(lm.preprocess.crop, Path(annotations) if annotations else None)
run.describe(model=lm.label, data=faces.source)
x = lm.preprocess.normalize(faces.images)
result = correspondence.correspondence(lm, x, faces, fill=fill, draws=random_draws, seed=seed)
print(
    f"{lm.name}: "
    + ", ".join(f"{k} = {v}" for k, v in result.layers.items())
    + f"; {len(x)} images, occluder {faces.box_size[0]}×{faces.box_size[1]} px, {random_draws} random draws"
)

# %% [markdown]
# ## Exercise 1 · Δ from sign vectors
# **Task.** Write `my_delta(eps)`: `eps` is the n×D matrix of feature changes of n images. Return Δ,
# the fraction of dimensions whose signs differ, averaged over the ordered pairs i ≠ j.
#
# **Hint.** `torch.sign` gives −1, 0 or +1; compare two rows with `!=` and take the mean.
# **Predict first:** an unchanged feature (ε = 0) in both images — agreement or disagreement? And if
# you used `eps > 0` instead of the sign?


# %%
def my_delta(eps):
    raise NotImplementedError  # your Δ here


# %%
_ = zfhelpers.course.check("08.delta_from_signs", my_delta)  # prints ✓, ✗ with a hint, or … not attempted

# %% [markdown]
# ## Exercise 2 · the chance line
# **Task.** Write `my_chance(eps)`: the Δ expected if every image changed its signs independently,
# each with its own frequencies p_i(−), p_i(0), p_i(+): the mean over the pairs i < j of
# 1 − Σ_s p_i(s) p_j(s). This is the dotted line of the figure below.
#
# **Predict first:** for fair ±1 signs it is 0.5. Will it be above or below 0.5 when most features do
# not change at all (sign 0 in both images)?


# %%
def my_chance(eps):
    raise NotImplementedError  # your chance level here


# %%
_ = zfhelpers.course.check("08.independent_chance", my_chance)  # prints ✓, ✗ with a hint, or … not attempted

# %% [markdown]
# ## Table 1, measured
# Per part and layer: Δ averaged over the 10 image pairs with a 95 % bootstrap interval, and a
# paired permutation test of "part below random occlusion" over the same pairs (the pairs share
# images, so the p-values are approximate). A part counts as below random only when that test says
# so. The absolute Δ depends on the network and on how sparse its features are, so the paper's
# magnitudes are shown for reference, not compared.

# %%
claims = {c.id: run.claim(c) for c in correspondence.table1_claims(result)}
print(table.text({"08": run.results}))

# %%
fig = figures.correspondence_figure(
    result,
    faces.images,
    lm,
    claims,
    title=f"Correspondence (ZF §4.3, Table 1), {lm.name}; stand-in images: {faces.source}",
)
run.save_figure(
    fig,
    f"08_correspondence_{lm.name}",
    model=lm.label,
    data=faces.source,
    dpi=dpi,
    params={"random_draws": random_draws, "seed": seed, "fill": fill},
)
plt.show()

# %% [markdown]
# ## Explore (interactive)
# Part and layer: every image pair's Δ with the part occluded against the same pair's Δ under random
# occlusion — the paired comparison the test makes, pair by pair.

# %% tags=["nbval-ignore-output"]
widgets.explore(interactive, lambda: figures.correspondence_explorer(result))
