# %% [markdown]
# # 07 · Occlusion sensitivity (ZF §4.2, Fig. 7)
# [← 06 · architecture_selection](06_architecture_selection.ipynb) · [index](index.ipynb) · [08 · correspondence →](08_correspondence.ipynb)
#
# Is the classifier really using the object, or its context? ZF slide a grey square over the image
# and, at every occluder position, record **(b)** the total activation of the top-layer feature map
# that is strongest on the unoccluded image, **(d)** the probability of the correct class and
# **(e)** the most probable class; **(c)** shows what that feature map responds to, projected to
# pixels. Their point: when the square covers the object, p(correct class) collapses and another
# label takes over (their Pomeranian becomes a *tennis ball* when its face is covered).
#
# `zfhelpers.methods.occlusion.occlusion` computes (b), (d) and (e) in one batched pass (equal to a
# naive one-position-at-a-time loop, tested — and written by hand below). ZF do not state the
# occluder's size, stride or grey level; they are parameters here and printed on the figures.
#
# **What stands in here.** The zoo's classifier (MobileNetV2 offline; its `layer5` role is the top
# conv block). Panel (c) uses the model's projection rule, named on the figure: ZF's deconvnet needs
# max-pool switches, which MobileNetV2 has none of, so there it is guided backpropagation (notebook
# 09 compares the rules). The object of each photo is a box drawn by eye (`data/images/objects.json`),
# dashed on the figures; "on the object" means the occluder's centre is inside it. When one photo is
# filled by its object, nothing else can take over the label — so the label-switch example is two
# photos side by side (the composite of notebook 10), where covering one object hands the label to
# the other.

# %% tags=["parameters"]
profile = "offline"  # "offline" (MobileNetV2) or "paper" (AlexNet)
model = ""  # zoo model; empty — the profile's classifier {"", mobilenet_v2, alexnet, vgg16, vgg19}
images = ["squirrel", "coffee", "camera"]  # photos with a class in labels.json and a box in objects.json [1..6]
composite = "chelsea|coffee"  # two photos side by side: the label-switch example
size = 56  # occluder side (pixels of the 224×224 input) [8..160]
stride = 28  # occluder step (pixels) [4..112]
fill = 0.0  # occluder value in normalised units (0 is the dataset mean, mid grey) [-3..3]
dpi = 100  # resolution of saved figures [50..300]
interactive = True  # widget explorer (papermill sets False)

# %%
import matplotlib.pyplot as plt

import zfhelpers
import zfhelpers.course
from zfhelpers.analysis import occlusion_effects
from zfhelpers.claims import table
from zfhelpers.data.composite import source_label
from zfhelpers.notebook import occlusion_figures as figures
from zfhelpers.notebook import widgets

run = zfhelpers.notebook.start("07_occlusion", globals())
lm = zfhelpers.load_model(model, profile, task="classify")
run.describe(model=lm.label, data=source_label([*images, composite]))
layer = lm.role("layer5")
occluder = {"size": size, "stride": stride, "fill": fill, "layer": layer}
print(
    f"{lm.name}: feature layer {layer}, projection rule {lm.spec.projection_rule}; "
    f"occluder {size} px, stride {stride}, fill {fill}"
)

# %% [markdown]
# ## Exercise 1 · the occlusion loop by hand
# **Task.** Write `my_occlusion(model, x, size, stride, fill, target)`: for every window position
# `y = 0, stride, 2·stride, …` (rows) and `x0` likewise (columns), with the window inside the image,
# set a copy of `x` to `fill` in the `size`×`size` window, run the model and keep the probability of
# class `target`. Return the grid of probabilities (rows × columns).
#
# **Hint.** Two nested `range(0, H - size + 1, stride)` loops; `model(xc).softmax(1)[0, target]`.
# **Predict first:** will the result differ if you forget the softmax? (The checker will tell you.)


# %%
def my_occlusion(model, x, size, stride, fill, target):
    raise NotImplementedError  # your loop here


# %%
_ = zfhelpers.course.check("07.occlusion_loop", my_occlusion)  # prints ✓, ✗ with a hint, or … not attempted

# %% [markdown]
# ## ZF Fig. 7 on three photos

# %%
rows = occlusion_effects.occlusion_rows(lm, images, **occluder)
fig = figures.occlusion_figure(rows, lm, layer=layer)
run.save_figure(fig, f"07_occlusion_{lm.name}", model=lm.label, data=source_label(images), dpi=dpi, params=occluder)
plt.show()

# %% [markdown]
# ## Exercise 2 · predict before the reveal
# In the composite below, MobileNetV2 ranks *espresso* first. **Which label will win when the whole
# cup is covered by a grey square?** Write your guess as an ImageNet class name, then run the check.


# %%
def my_prediction():
    raise NotImplementedError  # return "…"


# %%
_ = zfhelpers.course.check("07.predict_switch", my_prediction)  # prints ✓, ✗ with a hint, or … not attempted

# %% [markdown]
# ## The label switch
# The same maps for the composite: (d) p(top class) and (e) the most probable class wherever the
# occluder sits. Where it covers the cup, the other photo's class takes over.

# %%
switch = occlusion_effects.occlusion_rows(lm, [composite], **occluder)[0]
switch_claims = occlusion_effects.object_claims(composite, switch.result, switch.box, lm.categories, label_switch=True)
fig = figures.label_switch_figure(switch, lm)
run.save_figure(
    fig, f"07_label_switch_{lm.name}", model=lm.label, data=source_label([composite]), dpi=dpi, params=occluder
)
plt.show()

# %% [markdown]
# ## The paper's claims, measured
# For every image: p(true class) with the occluder on the object minus elsewhere, with a permutation
# test; for the composite also the share of on-object positions where the label switches (95 %
# Wilson interval) against the share elsewhere. Only non-overlapping occluder positions enter the
# tests (overlapping windows share pixels and would inflate the evidence), so small occluders on
# small images leave few positions and wide intervals.

# %%
for row in rows:
    for claim in occlusion_effects.object_claims(row.name, row.result, row.box, lm.categories):
        run.claim(claim)
for claim in switch_claims:
    run.claim(claim)
print(table.text({"07": run.results}))

# %% [markdown]
# ## Explore (interactive)
# Occluder size, stride and image (the composite included).

# %% tags=["nbval-ignore-output"]
widgets.explore(interactive, lambda: figures.occlusion_explorer(lm, [composite, *images], **occluder))
