# %% [markdown]
# # 01 · Feature maps and filters ("direct visualisation")
#
# The simplest look inside a CNN (seed 002, parts 1–2): show the **feature maps** a layer produces
# for one image, each channel scaled to its own range, and the **filters** themselves — the first
# layer's as RGB tiles, a deeper layer's as signed k×k slices. Zeiler & Fergus (2014, §4, Fig. 6)
# start from exactly these first-layer filters to diagnose the AlexNet architecture; everything
# after that (deconvnet projections, notebook 02) answers the question these raw pictures leave
# open: *what in the image* drives a deep channel.
#
# Offline this runs on torchvision's MobileNetV2 (ImageNet weights; ReLU6, no max-pool — not the
# paper's AlexNet). With `profile = "paper"` it runs on torchvision's AlexNet.

# %% tags=["parameters"]
profile = "offline"  # "offline" (MobileNetV2) or "paper" (AlexNet, needs its weights)
model = ""  # a zoo model name; empty — the profile's default
image = "chelsea"  # sample photo from data/images, or a path
layer = ""  # layer for the feature-map grid; empty — the model's lowest showcase layer
n_maps = 32  # feature maps in the grid
top_k = 6  # top channels shown per layer
dpi = 100  # resolution of the saved figures
interactive = True  # ipywidget explorer below the static figures (papermill sets False)

# %%
import matplotlib.pyplot as plt

import zfhelpers
from zfhelpers.models.capture import capture_detached as record_activations
from zfhelpers.notebook import plots as viz
from zfhelpers.notebook import widgets

zfhelpers.notebook.setup(seed=0)
lm = zfhelpers.load_model(model or None, profile)
sample = zfhelpers.prepare(image, lm.preprocess)
grid_layer = layer or lm.showcase[0]
deep_layer = lm.showcase[2]
acts = record_activations(lm, sample.tensor, sorted({grid_layer, deep_layer, *lm.showcase}, key=list(lm.layers).index))
acts = {k: v[0] for k, v in acts.items()}
stamp = dict(model=lm.label, data=f"{sample.name} (data/images)")
print(f"model {lm.name}; layers shown: {grid_layer}, {deep_layer}; showcase {', '.join(lm.showcase)}")

# %% [markdown]
# ## Feature maps of a low and a deeper layer
# Low layers keep the image's geometry (edges and colour blobs are still recognisable); deeper
# layers are coarser and their channels respond to larger, more specific patterns.

# %%
fig = plt.figure(figsize=(12, 4.4))
gs = fig.add_gridspec(1, 3, width_ratios=[1, 1.6, 1.6])
ax = fig.add_subplot(gs[0])
ax.imshow(sample.display)
ax.set_title(f"input ({sample.name}, {lm.preprocess.crop}×{lm.preprocess.crop})", fontsize=9)
ax.axis("off")
for g, name in zip((gs[1], gs[2]), (grid_layer, deep_layer)):
    a = acts[name]
    viz.plot_feature_maps(a, channels=range(min(n_maps, a.shape[0])), ax=fig.add_subplot(g),
                          title=f"{name}: channels 0–{min(n_maps, a.shape[0]) - 1} of {a.shape[0]}, {a.shape[1]}×{a.shape[2]}")
fig.suptitle("Feature maps, each channel scaled to its own min..max (yellow = high)", fontsize=10)
fig.tight_layout()
zfhelpers.save_figure(fig, f"01_feature_maps_{lm.name}", dpi=dpi, **stamp)
plt.show()

# %% [markdown]
# ## Filters: first layer as RGB, a deeper layer as signed slices
# Grey is zero; each filter is scaled to its own largest weight. First-layer filters of a trained
# network are oriented edges, colour opponents and blobs (ZF Fig. 6c).

# %%
w1 = lm.conv_weight(lm.showcase[0])
w2 = lm.conv_weight(lm.showcase[1])
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [1, 1.3]})
viz.plot_rgb_filters(w1, ncols=8, ax=axes[0], title=f"{lm.showcase[0]}: {w1.shape[0]} RGB filters {w1.shape[2]}×{w1.shape[3]}")
viz.plot_filter_slices(w2, ax=axes[1], title=f"{lm.showcase[1]}: " + (
    f"{w2.shape[0]} depthwise {w2.shape[2]}×{w2.shape[3]} filters (first 128)" if w2.shape[1] == 1
    else f"first 8 filters × 16 input channels of {w2.shape[0]}×{w2.shape[1]}×{w2.shape[2]}×{w2.shape[3]} (red +, blue −)"))
fig.tight_layout()
zfhelpers.save_figure(fig, f"01_filters_{lm.name}", dpi=dpi, **stamp)
plt.show()

# %% [markdown]
# ## The most active channels of each layer
# For each showcase layer, the channels with the largest mean activation on this image, their maps
# upsampled onto the photo. Moving up, responses become sparser and tied to object parts.

# %%
fig = viz.plot_top_channels(sample.display, {k: acts[k] for k in lm.showcase}, k=top_k)
zfhelpers.save_figure(fig, f"01_top_channels_{lm.name}", dpi=dpi, **stamp)
plt.show()

# %% [markdown]
# ## Explore (interactive)
# Pick any layer and channel; the channel slider's range follows the layer.

# %% tags=["nbval-ignore-output"]
from zfhelpers.notebook import explorers

# Opens on the channel with the largest mean activation; a channel that is all zero here is named as dead.
explorer = widgets.explore(interactive, lambda: explorers.feature_map_explorer(lm, sample, layer=grid_layer))
