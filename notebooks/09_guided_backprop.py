# %% [markdown]
# # 09 · Gradient, deconvnet and guided backpropagation (Springenberg et al. 2015, §3.4 and Fig. 1)
#
# [← 08 · correspondence](08_correspondence.ipynb) · [index](index.ipynb) · [10 · cam →](10_cam.ipynb)
#
# All three methods send a signal from a unit (or a class score) back to the pixels; they differ only
# in what happens at each ReLU on the way down (`zfhelpers.methods.rules`):
#
# | rule | backward through a ReLU with input $f$ |
# |---|---|
# | gradient (Simonyan et al. 2014) | $R_l = \mathbb 1[f_l>0]\,R_{l+1}$ |
# | deconvnet (Zeiler & Fergus 2014) | $R_l = \max(R_{l+1}, 0)$ |
# | guided backpropagation | $R_l = \mathbb 1[f_l>0]\,\max(R_{l+1},0)$ |
#
# Guided backprop combines the forward mask of the gradient with the backward rectification of the
# deconvnet. Max-pools route the signal to their switches under all three rules. The last section
# runs the **model-randomisation sanity check** of Adebayo et al. (2018): re-initialise layers from
# the top down and measure how much each rule's map changes.
#
# Offline: torchvision MobileNetV2 (ImageNet; ReLU6, **no max-pool**), plus the edge-tuned HED VGG16
# conv stack for single units of a network *with* max-pool switches. Paper profile: torchvision VGG16
# and AlexNet.

# %% tags=["parameters"]
profile = "offline"  # "offline" (MobileNetV2) or "paper" (VGG16)
model = ""  # zoo model; empty — the profile's CAM model (a classifier)
images = ["chelsea", "coffee", "astronaut", "rocket"]  # photos (data/images); the first one for single units
maxpool_model = ""  # model with max-pool switches for the second unit panel; empty — the profile's projection model
show_maxpool = True  # draw that second panel
border = 2  # skip units this close to a map's edge
cascade_steps = 6  # randomisation steps computed (0: every layer; the claims' steps are always included)
dpi = 100  # resolution of saved figures
interactive = True  # widget explorer (papermill sets False)

# %%
import torch

import zfhelpers
from zfhelpers import course
from zfhelpers.analysis import projections as analysis
from zfhelpers.analysis.sanity import learnable_layers
from zfhelpers.claims import table
from zfhelpers.methods.projection import class_projection, strongest_units
from zfhelpers.methods.rules import RULES
from zfhelpers.notebook import projection_explorers, widgets
from zfhelpers.notebook import projection_figures as figures

run = zfhelpers.notebook.start("09_guided_backprop", globals())
lm = zfhelpers.load_model(model, profile, task="cam")
batch, samples = zfhelpers.load_batch(images, lm.preprocess)
data_label = ", ".join(images) + " (data/images)"
print(f"{lm.name}: {lm.spec.summary}")

# %% [markdown]
# ## Single high units
# For each of the upper showcase layers, the strongest unit on the first photo (on MobileNetV2 the
# strongest *unclipped* one: a ReLU6 unit clipped at 6 passes no gradient through itself), cropped
# to its receptive field. Grey is zero. Without max-pooling the deconvnet has no switches, and it
# never consults the forward ReLU masks: nothing in its backward pass depends on the photo except
# the starting value. A unit's deconvnet projection is therefore the same pattern, up to scale, for
# every photo — a regular grid from the transposed strided convolutions. Guided backprop keeps the
# masks, and with them the eye.

# %%
rows = strongest_units(lm, samples[0].tensor, layers=lm.showcase[2:], border=border, rules=RULES)
fig = figures.rule_units_figure(samples[0].display, rows, title=f"Single strongest units of {lm.name}, each rule")
run.save_figure(fig, f"09_rules_units_{lm.name}", dpi=dpi, model=lm.label, data=f"{samples[0].name} (data/images)");

# %% [markdown]
# The same on a network **with max-pooling** (offline: the edge-tuned HED VGG16 conv stack). Here the
# deconvnet has switches, which tie its projections to the photo; still, from the third block up its
# projections turn into stripe textures while guided backprop keeps the image structure (notebook 02
# measures the difference and explains the texture).

# %%
if show_maxpool:
    mp = zfhelpers.load_model(maxpool_model, profile, task="project")
    photo = zfhelpers.prepare(images[0], mp.preprocess)
    mp_rows = strongest_units(mp, photo.tensor, layers=mp.showcase[2:], border=border, rules=RULES)
    fig = figures.rule_units_figure(photo.display, mp_rows, title=f"Single strongest units of {mp.name}, each rule")
    run.save_figure(fig, f"09_rules_units_{mp.name}", dpi=dpi, model=mp.label, data=f"{photo.name} (data/images)")

# %% [markdown]
# ## Class scores
# The top-1 class logit of each photo sent back with each rule. The gradient is noisy; guided
# backprop draws the object's edges; the deconvnet draws a fine grid that looks alike on every
# photo, whatever the photo shows (why: next section).

# %%
# NBVAL_CHECK_OUTPUT
with torch.inference_mode():
    probs = lm.model(batch).softmax(1)
top1 = probs.argmax(1)
labels = [f"{lm.categories[int(c)]} {float(p):.2f}" for c, p in zip(top1, probs.amax(1))]
for s, c in zip(samples, top1):
    print(f"{s.name:10} top-1 {lm.categories[int(c)]}")
class_maps = {rule: class_projection(lm, batch, target=top1, rule=rule) for rule in RULES}
fig = figures.rule_class_figure(samples, labels, class_maps,
                                title=f"Top-1 class score backpropagated to the pixels, {lm.name}")  # fmt: skip
_ = run.save_figure(fig, f"09_rules_class_{lm.name}", dpi=dpi, model=lm.label, data=data_label)

# %% [markdown]
# ## Predict, then look: one class score, sent back from different photos
# Take the first photo's class and send *its* score back from every photo. **Before running the next
# cell, predict:** will the deconvnet map of that class on the coffee cup look like the cup, like
# the first photo, or like neither? And the guided-backprop map?
#
# *Why* (read after looking): on a network without max-pooling the deconvnet's backward pass meets
# the photo nowhere. Convolutions, batch norm (a fixed scale and shift at evaluation), the average
# pool and the linear layer pass the signal back with fixed weights; the deconvnet's rectifier looks
# only at the signal itself. So for a class score the map depends on the class and the weights, not
# on the image — identical on every photo, by construction. Global average pooling sends the same
# signal to every position, which is why the map is one periodic pattern everywhere. Springenberg et
# al. saw the deconvnet fail without switches; here it fails completely, and the claim measures it.

# %%
same = {rule: class_projection(lm, batch, target=int(top1[0]), rule=rule) for rule in ("deconvnet", "guided")}
name = lm.categories[int(top1[0])]
fig = figures.same_class_figure(samples, same, class_name=name)
run.save_figure(fig, f"09_same_class_{lm.name}", dpi=dpi, model=lm.label, data=data_label)
run.claim(analysis.switchless_claim(same["deconvnet"], model=lm.name, class_name=name))
print(f"for contrast, guided backprop: max difference between photos / peak = "
      f"{analysis.image_independence(same['guided']):.2f} (the masks make it depend on the photo)")  # fmt: skip

# %% [markdown]
# ## Build it yourself 1: guided backpropagation's ReLU as a backward hook
# Write a *full backward hook* `hook(module, grad_input, grad_output)` for `nn.ReLU` returning a
# one-element tuple. Autograd hands you `grad_input[0]`, which already is the gradient rule
# (`grad_output` masked where the forward input was not positive). Guided backprop keeps that mask
# **and** drops negative signal. *Predict first*: what changes if you rectify `grad_output[0]`
# instead of `grad_input[0]`?

# %%
def guided_hook(module, grad_input, grad_output):
    raise NotImplementedError  # your code here


# %%
course.check("09.guided_relu", guided_hook);

# %% [markdown]
# ## Sanity check: cascading randomisation (Adebayo et al. 2018)
# Layers are re-initialised one more at a time from the top (classifier) down. A map that still
# looks like the original after the weights are gone reflects the image more than the model.
# Similarity to the trained model's map: Spearman rank correlation of |map| (solid) and SSIM
# (dashed), averaged over the photos. The claims give the rank correlation after the top half of
# the layers and after all of them were re-initialised, with bootstrap intervals over photos and
# chance at ρ = 0. Adebayo et al. found the gradient sensitive to this and guided backprop nearly
# insensitive; we call a map "barely changed" when the whole interval lies above ρ = 0.5 and
# "changed" when it lies below (our convention, printed with each verdict).

# %%
steps = {rule: analysis.cascade(lm, lambda m, rule=rule: class_projection(m, batch, target=top1, rule=rule),
                                n_steps=cascade_steps) for rule in RULES}  # fmt: skip
fig = figures.sanity_figure(steps, order=learnable_layers(lm), image_name=samples[0].name, n_images=len(samples),
                            title=f"Cascading randomisation of {lm.name}; thumbnails: '{samples[0].name}'")  # fmt: skip
run.save_figure(fig, f"09_sanity_{lm.name}", dpi=dpi, model=lm.label, data=data_label)
for claim in analysis.randomization_claims(steps, lm):
    run.claim(claim)

# %% [markdown]
# ## Build it yourself 2: the sanity check's similarity
# Write `rank_correlation(a, b)` for two H×W maps: Spearman's ρ is Pearson's correlation of the
# values' **ranks** (the position of each value in sorted order; `argsort` of `argsort` gives them).
# *Predict first*: for the guided-backprop maps above, would Pearson's correlation of the raw values
# be higher or lower than ρ, given a few very bright pixels?

# %%
def rank_correlation(a, b):
    raise NotImplementedError  # your code here


# %%
course.check("09.rank_correlation", rank_correlation);

# %% [markdown]
# ## Claims
# Everything measured above, with its interval and the verdict against the paper statement it answers.

# %%
print(table.text({"09": run.results}))

# %% [markdown]
# ## Explore (interactive)
# Any layer and channel of the first photo, all three rules side by side. It opens on the channel
# whose strongest activation is largest.

# %% tags=["nbval-ignore-output"]
explorer = widgets.explore(
    interactive, lambda: projection_explorers.rules_explorer(lm, samples[0], layer=lm.showcase[2], border=border)
)
