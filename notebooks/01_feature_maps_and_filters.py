# %% [markdown]
# # 01 · Feature maps and filters ("direct visualisation"; ZF §4.1, Fig. 6)
#
# [← 00 · setup_check](00_setup_check.ipynb) · [index](index.ipynb) · [02 · deconvnet →](02_deconvnet.ipynb)
#
# The simplest look inside a CNN: the **feature maps** a layer produces for one image, each channel
# scaled to its own range, and the **filters** themselves — the first layer's as RGB tiles, a deeper
# layer's as signed k×k slices. Zeiler & Fergus (2014, §4.1, Fig. 6) start from exactly these
# first-layer filters to diagnose AlexNet's first layer (11×11 filters at stride 4: very high and very
# low frequencies, little in between, some dead filters). Everything after this notebook (the
# deconvnet, notebook 02) answers the question these raw pictures leave open: *what in the image*
# drives a deep channel.
#
# Offline this runs on torchvision's MobileNetV2 (ImageNet weights; ReLU6, no max-pool), whose
# first layer (the "stem") has **3×3** filters at stride 2 — not the paper's AlexNet. With
# `profile = "paper"` it runs on torchvision's AlexNet.

# %% tags=["parameters"]
profile = "offline"  # "offline" (MobileNetV2) or "paper" (AlexNet, needs its weights)
model = ""  # a zoo model name; empty — the profile's classifier
image = "chelsea"  # sample photo from data/images, or a path
n_maps = 32  # feature maps in each grid
top_k = 6  # top channels shown per layer
dpi = 100  # resolution of the saved figures
interactive = True  # ipywidget explorer below the static figures (papermill sets False)

# %%
import zfhelpers
from zfhelpers import course
from zfhelpers.analysis.filters import filter_structure, stem_claims
from zfhelpers.claims import table
from zfhelpers.models.capture import capture_detached
from zfhelpers.notebook import explorers, feature_figures, plots, widgets

run = zfhelpers.notebook.start("01_feature_maps_and_filters", globals())
lm = zfhelpers.load_model(model, profile, task="classify")
sample = zfhelpers.prepare(image, lm.preprocess)
first, second = lm.role("layer1"), lm.showcase[1]
acts = {k: v[0] for k, v in capture_detached(lm, sample.tensor, list(lm.showcase)).items()}
stamp = dict(model=lm.label, data=f"{sample.name} (data/images)")
print(f"{lm.name}: {lm.spec.summary}; layers shown: {', '.join(lm.showcase)}")

# %% [markdown]
# ## Feature maps of a low and a deeper layer
# The first layer keeps the image's geometry: most maps are the photo seen through one filter
# (brightness, one colour, edges in one direction). A few maps are flat — all zero on this photo,
# cut off by the ReLU6 — and a few look like noise only because every map is stretched to its own
# range: their filters have almost no weight (crossed out in the filter figure below). Deeper maps
# are coarser and respond to larger, more specific patterns.

# %%
fig = feature_figures.feature_maps_figure(sample, {first: acts[first], lm.showcase[2]: acts[lm.showcase[2]]},
                                          n_maps=n_maps, crop=lm.preprocess.crop)  # fmt: skip
run.save_figure(fig, f"01_feature_maps_{lm.name}", dpi=dpi, **stamp);

# %% [markdown]
# ## Filters: the first layer as RGB, a deeper layer as signed slices
# Grey is zero; each filter is scaled to its own largest weight. A 3×3 kernel is too small for the
# multi-cycle oriented stripes (Gabor-like edges) and colour-opponent blobs of AlexNet's 11×11 filters
# (ZF Fig. 6b): what it can hold is a **light–dark step** in one direction (a local gradient), a
# **colour contrast** without spatial structure, or a **flat blob** of one colour. The claims below
# measure which: each filter's energy splits into a *flat* part (its 3×3 mean per colour) and a
# *colour* part (its deviation from the R, G, B mean), compared with what random weights give
# (1/9 and 2/3). Look for grey-and-white tiles (achromatic steps: low colour share), the few
# saturated single-colour tiles (colour contrasts), and the crossed-out near-empty filters. The
# deeper layer here is depthwise: one 3×3 filter per channel, no colour at all.

# %%
structure = filter_structure(lm.conv_weight(first))
fig = feature_figures.filters_figure(lm.conv_weight(first), lm.conv_weight(second), names=(first, second),
                                     near_zero=structure.near_zero)  # fmt: skip
run.save_figure(fig, f"01_filters_{lm.name}", dpi=dpi, **stamp)
for claim in stem_claims(structure, model=lm.name, layer=first):
    run.claim(claim)
print(table.text({"01": run.results}))

# %% [markdown]
# ## The most active channels of each layer
# For each showcase layer, the channels with the largest mean activation on this image, their maps
# upsampled onto the photo (each scaled to its own range). Moving up, the maps get coarser and
# their hot spots cover larger parts of the face. (MobileNetV2's block outputs are linear
# bottlenecks, so their values can be negative.)

# %%
fig = plots.plot_top_channels(sample.display, {k: acts[k] for k in lm.showcase}, k=top_k)
run.save_figure(fig, f"01_top_channels_{lm.name}", dpi=dpi, **stamp);

# %% [markdown]
# ## Build it yourself 1: record a layer with a forward hook
# Every figure above starts from a layer's output, recorded during an ordinary forward pass by a
# *forward hook* (`module.register_forward_hook(fn)`, where `fn(module, inputs, output)` runs right
# after the module). Write `record(model, module, x)`: register a hook on `module` that keeps its
# `output`, run `model(x)` under `torch.no_grad()`, **remove the hook** (keep the handle that
# `register_forward_hook` returns and call `.remove()`), and return what it kept.
# *Predict first*: for MobileNetV2's stem on one 224 px photo, what shape will it return?

# %%
def record(model, module, x):
    raise NotImplementedError  # your code here


# %%
course.check("01.forward_hook", record);

# %% [markdown]
# ## Build it yourself 2: a filter as an RGB tile, grey = 0
# The filter figure maps a weight of zero to mid-grey, so that positive and negative weights are
# both visible. Write `to_rgb(weight)`: O×3×k×k filters → O×k×k×3 images in [0, 1], each filter
# divided by twice its own largest |weight| and shifted by 0.5. *Predict first*: why is scaling each
# filter between its own min and max (a common shortcut) wrong here?

# %%
def to_rgb(weight):
    raise NotImplementedError  # your code here


# %%
course.check("01.filter_rgb", to_rgb);

# %% [markdown]
# ## Explore (interactive)
# Pick any layer and channel; the channel slider's range follows the layer. It opens on the
# channel with the largest mean activation; a channel that is all zero here is named as dead.

# %% tags=["nbval-ignore-output"]
explorer = widgets.explore(interactive, lambda: explorers.feature_map_explorer(lm, sample, layer=first))
