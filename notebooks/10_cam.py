# %% [markdown]
# # 10 · Class activation maps: CAM, Grad-CAM, Grad-CAM++, Guided Grad-CAM
# [← 09 · guided_backprop](09_guided_backprop.ipynb) · [index](index.ipynb) · [11 · feature_map_inversion →](11_feature_map_inversion.ipynb)
#
# The third family of CNN visualisation: *where in the image is the evidence for a class?*
# (`zfhelpers.methods.cam`, one call per method, batched, any target class, any conv layer.)
#
# * **CAM** (Zhou et al. 2016): needs global average pooling + one linear layer;
#   $M_c=\sum_k w_{ck}A_k$.
# * **Grad-CAM** (Selvaraju et al. 2017): channel weights are the spatially averaged gradients,
#   $M_c=\mathrm{ReLU}(\sum_k \alpha_k A_k)$. On a GAP + linear network $\alpha_k = w_{ck}/Z$ ($Z$ the
#   number of positions), so Grad-CAM **is** ReLU(CAM)/Z — an identity, measured below; the figure
#   then shows one column for both.
# * **Grad-CAM++** (Chattopadhyay et al. 2018): pixel-weighted positive gradients.
# * **Guided Grad-CAM**: guided backpropagation (notebook 09) × Grad-CAM, high resolution.
#
# Three checks follow the maps: two photos side by side (does each class's map sit on its own
# photo?), baselines that know nothing (a randomly initialised network, Sobel edges), and the
# cascading-randomisation sanity check of Adebayo et al. 2018 — **a map that survives when the
# classifier is re-initialised is not evidence of what the classifier uses**, however plausible it
# looks. The zoo's model for this task: MobileNetV2 offline (GAP + linear, so CAM applies), VGG16 on
# the paper profile (CAM does not apply there: it has three linear layers).

# %% tags=["parameters"]
profile = "offline"  # "offline" (MobileNetV2) or "paper" (VGG16)
model = ""  # zoo model; empty — the profile's model for class activation maps {"", mobilenet_v2, alexnet, vgg16, vgg19}
images = ["chelsea", "coffee", "rocket"]  # photos (data/images or paths); every ordered pair is a composite [2..6]
top_k = 2  # classes per photo in the first figure [1..5]
layer = ""  # conv layer for the maps; empty — the model's top conv layer (its layer5 role)
cascade_depth = 3  # learnable layers re-initialised one by one, top down; 0 for all of them [0..60]
dpi = 100  # resolution of saved figures [50..300]
interactive = True  # widget explorer (papermill sets False)

# %%
import matplotlib.pyplot as plt
import torch

import zfhelpers
import zfhelpers.course
from zfhelpers.analysis import cam_evidence
from zfhelpers.claims import table
from zfhelpers.data.composite import source_label
from zfhelpers.methods import cam
from zfhelpers.notebook import cam_figures as figures
from zfhelpers.notebook import widgets

run = zfhelpers.notebook.start("10_cam", globals())
lm = zfhelpers.load_model(model, profile, task="cam")
run.describe(model=lm.label, data=source_label(images))
layer = layer or cam.default_layer(lm)
x, samples = zfhelpers.load_batch(images, lm.preprocess)
with torch.inference_mode():
    probs = lm.model(x).softmax(1)
methods = cam.applicable(lm)
print(f"{lm.name}, maps from layer {layer} {tuple(lm.shape(layer))}; methods: {', '.join(methods)}")

# %% [markdown]
# ## Exercise 1 · CAM from the classifier's weights
# **Task.** Write `my_cam(acts, weight, target)`: `acts` are the last conv maps (N×K×h×w), `weight`
# the linear layer's weights (classes×K), `target` one class per image. Return the N×h×w maps
# $M_c=\sum_k w_{ck}A_k$.
#
# **Hint.** `weight[target]` is N×K; `torch.einsum("nk,nkhw->nhw", …)`.
# **Predict first:** can a CAM value be negative? Should you clip it?


# %%
def my_cam(acts, weight, target):
    raise NotImplementedError  # your CAM here


# %%
_ = zfhelpers.course.check("10.cam_from_weights", my_cam)  # prints ✓, ✗ with a hint, or … not attempted

# %% [markdown]
# ## Exercise 2 · Grad-CAM by hand
# **Task.** Write `my_gradcam(acts, grads)`: `grads` = ∂y_c/∂A for the target class (same shape as
# `acts`). Return ReLU(Σ_k α_k A_k) with α_k the spatial mean of the gradients of map k. The checker
# uses a network with two linear layers, where Grad-CAM is not a rescaled CAM.


# %%
def my_gradcam(acts, grads):
    raise NotImplementedError  # your Grad-CAM here


# %%
_ = zfhelpers.course.check("10.gradcam_by_hand", my_gradcam)  # prints ✓, ✗ with a hint, or … not attempted

# %% [markdown]
# ## Top classes of each photo, every method
# Heat maps are min–max scaled per map (blue 0 → red 1 of each map's own range); Guided Grad-CAM is
# shown as |signal| (black = none). First the identity: where it holds, CAM and Grad-CAM are one map.

# %%
# NBVAL_CHECK_OUTPUT
identity = cam_evidence.identity_claim(lm, x, target="top1", layer=layer)
if identity is not None:
    run.claim(identity)
identity_holds = identity is not None and identity.verdict == "reproduced"
if identity is not None:  # a GAP → linear head: the identity must hold, else a method is wrong
    assert identity_holds, identity.reason
print("Grad-CAM = ReLU(CAM)/Z to float rounding:", identity_holds)

# %%
maps = cam_evidence.method_maps(lm, x, layer=layer, top_k=top_k, methods=methods)
fig = figures.methods_figure(samples, maps, lm, probs, layer=layer, identity_holds=identity_holds)
run.save_figure(fig, f"10_cam_methods_{lm.name}", model=lm.label, data=source_label(images), dpi=dpi)
plt.show()

# %% [markdown]
# ## Two objects, two classes
# **Predict first:** in the cat | espresso composite, where will the map of *espresso* put its mass —
# and the map of the cat's class? Would Grad-CAM++ separate them as cleanly?
#
# Every ordered pair of the photos is put side by side; for each photo's own top class (decided on
# the photo alone), the share of the map's mass on that photo's half. A map blind to the class puts
# half of it on each side (chance 0.5).

# %%
by_name = {s.name: s for s in samples}
two = {
    m: cam_evidence.two_objects(lm, by_name, method=m, layer=layer) for m in ("gradcam", "gradcampp") if m in methods
}
two_claims = {m: run.claim(cam_evidence.two_objects_claim(r)) for m, r in two.items()}
fig = figures.two_objects_figure(two, lm, by_name, two_claims)
run.save_figure(
    fig,
    f"10_cam_two_objects_{lm.name}",
    model=lm.label,
    data="every ordered pair side by side of " + source_label(images),
    dpi=dpi,
)
plt.show()

# %% [markdown]
# ## Baselines and the randomisation sanity check
# Left: the trained network's Grad-CAM, the same on a fully re-initialised network, and a Sobel
# edge map (no model at all). Right: cascading randomisation from the classifier down; the
# Spearman correlation of each method's map with the trained one (mean over the photos, band: 95 %
# bootstrap interval). The claims take the step where only the classifier is re-initialised.

# %%
top1 = probs.argmax(1)
trained = cam.gradcam(lm, x, target=top1, layer=layer).upsampled
randomized = cam.random_model_baseline(lm, x, target=top1, layer=layer).upsampled
edges = cam.sobel_baseline([s.display for s in samples])
steps = cam_evidence.cascade(lm, x, target=top1, layer=layer, methods=methods, depth=cascade_depth)
fig = figures.baselines_figure(
    samples, trained, randomized, edges, steps, lm, classes=[lm.categories[int(t)] for t in top1]
)
run.save_figure(
    fig,
    f"10_cam_baselines_{lm.name}",
    model=lm.label,
    data=source_label(images),
    dpi=dpi,
    params={"cascade_depth": cascade_depth},
)
plt.show()

# %% [markdown]
# ## The claims, measured
# Adebayo et al. report that Grad-CAM changes when the model is randomised and Guided Grad-CAM
# hardly does; no paper states it for Grad-CAM++. "Survives" is read as a Spearman ρ of at least
# 0.5 with the trained map. With a handful of photos the intervals are wide: read the verdicts with
# their reasons.

# %%
for claim in cam_evidence.randomization_claims(lm, steps):
    run.claim(claim)
print(table.text({"10": run.results}))

# %% [markdown]
# **Reading the table.** A method is evidence of what the classifier uses only if its map changes
# when the classifier does. Compare each method's randomisation ρ with the dotted line of the
# figure: a Grad-CAM++ map that keeps a high rank correlation after the classifier is re-initialised
# is mostly the image's own structure (where the features are strong), whatever its two-object share
# says — its verdict is "not comparable" (no paper states it) and its reason says whether it
# survived. Adebayo et al. report that Grad-CAM's map changes and Guided Grad-CAM's hardly does: the
# verdicts of those two rows compare our ρ with those statements.

# %% [markdown]
# ## Explore (interactive)
# Layer, class rank and photo.

# %% tags=["nbval-ignore-output"]
widgets.explore(interactive, lambda: figures.cam_explorer(lm, x, samples, layer=layer))
