# %% [markdown]
# # 02 · The deconvnet: projecting single activations to pixels (ZF §2.1, Fig. 1)
#
# [← 01 · feature_maps_and_filters](01_feature_maps_and_filters.ipynb) · [index](index.ipynb) · [03 · top9_projections →](03_top9_projections.ipynb)
#
# Zeiler & Fergus pick **one activation** in a layer, set every other activation of that layer to
# zero, and send it back down through an attached *deconvnet*: at each layer (i) **unpool** with the
# *switches* recorded in the forward pass, (ii) **rectify** the signal with a ReLU, (iii) **filter**
# with the transposed filters (no bias). Contrast normalisation is skipped on the way down. Because
# the switches come from this image's forward pass, a projection looks like a piece of the image.
#
# Two implementations are compared: the **hook engine** (`zfhelpers.methods.projection`: autograd
# with the deconvnet rule at every ReLU, one batched backward pass) and the **explicit mirror**
# (`zfhelpers.methods.mirror`: unpool, rectify, filter written out layer by layer, for teaching).
#
# **First model: the ZF twin.** No ImageNet AlexNet/ZF weights exist offline, so the first part runs
# on the ZF-style twin trained here (7×7/2 first layer, overlapping 3×3/2 max-pools with real
# switches, contrast normalisation; 112 px input) on **Fashion-MNIST** — ZF's architecture at CPU
# scale. Its images are grey, so projections are shown in grey (their channel sum).
#
# **Second model: an edge detector.** The second part runs the same deconvnet on the profile's
# projection model (offline: the VGG16 conv stack of HED, ImageNet-initialised, then fine-tuned for
# *edge detection*; 2×2 max-pools; no classifier; with `profile = "paper"`, torchvision's AlexNet) on
# a photo, where its upper layers give stripe and checkerboard textures — explained there.

# %% tags=["parameters"]
profile = "offline"  # "offline" or "paper" (the second model becomes AlexNet)
twin = "zf"  # committed twin for the first part (zfhelpers.models.trained)
dataset = "fashion_test"  # scan set of the twin's images
index = 0  # which image of the set
twin_border = 1  # skip twin activations this many cells from a map's edge
model = ""  # second model; empty — the profile's projection model
image = "chelsea"  # photo for the second model
images = ["chelsea", "coffee", "astronaut", "rocket"]  # choices for the explorer
n_channels = 4  # channels per layer (those with the strongest single activation)
border = 2  # skip the second model's activations this close to a map's edge (padding artefacts)
dpi = 100  # resolution of saved figures
interactive = True  # widget explorer (papermill sets False)

# %%
import zfhelpers
from zfhelpers import course
from zfhelpers.analysis import projections as analysis
from zfhelpers.claims import table
from zfhelpers.data.scansets import load_scan_set
from zfhelpers.methods.mirror import mirror_strongest, mirror_vs_engine
from zfhelpers.methods.projection import strongest_units
from zfhelpers.models.trained import load_twin
from zfhelpers.notebook import explorers, widgets
from zfhelpers.notebook import projection_figures as figures

run = zfhelpers.notebook.start("02_deconvnet", globals())
tw = load_twin(twin)
data = load_scan_set(dataset, tw)
item = analysis.scan_sample(data, index, tw)
twin_stamp = dict(model=tw.label, data=f"{item.name} of {data.description}")
print(f"{tw.name}: {tw.spec.summary}\nimage: {item.name}")

# %% [markdown]
# ## Fig. 1 on the twin: the way down, step by step
# The strongest activation of the middle layer, followed through the explicit mirror. Each panel is
# the signal's norm over channels after an unpool or filter step, zoomed to the part of the map
# that ends up non-zero in pixels (red box on the input). Watch the unpooling steps: each pooled
# value goes back to the one position its switch recorded, so the signal stays on the garment.

# %%
trace = mirror_strongest(tw, item.tensor, layer=tw.showcase[len(tw.showcase) // 2], border=twin_border)
fig = figures.deconv_path_figure(item.display, trace, grey=True)
run.save_figure(fig, f"02_deconvnet_path_{tw.name}", dpi=dpi, **twin_stamp);

# %% [markdown]
# ## Projections of the strongest activations, layer by layer (ZF Fig. 2 on one image)
# Per layer, the channels whose single strongest activation on this image is largest: the feature
# map (red square: that activation), its projection to pixels (grey = 0) and the image patch under
# the projection. Low layers project to short edges of the garment; higher layers to larger parts
# of its outline — pieces of *this* image, selected by its switches. The fine grain on the higher
# layers' projections is the first pool's unpooling (a value goes back to one position out of each
# window, every fourth input pixel); the second model below shows the same mechanism much stronger.

# %%
twin_rows = strongest_units(tw, item.tensor, layers=tw.showcase, n_channels=n_channels, border=twin_border)
fig = figures.layer_projections_figure(item.display, twin_rows, grey=True,
                                       title=f"Deconvnet projections of single activations, {tw.name}, {item.name}")  # fmt: skip
run.save_figure(fig, f"02_projections_{tw.name}", dpi=dpi, **twin_stamp);

# %% [markdown]
# ## Mirror vs engine
# The hook engine and the explicit mirror (MaxUnpool with the forward switches, summing where two
# overlapping 3×3/2 pools picked the same input, + `conv_transpose2d` + ReLU) must give the same
# image: the deconvnet *is* the gradient with a different rule at the rectifiers (Simonyan et al.
# 2014, §4). The bottom row is their difference **magnified ten thousand times** on the projection's
# own grey-is-zero scale: a flat grey panel is the point — they agree to float rounding.

# %%
# NBVAL_CHECK_OUTPUT
check = mirror_vs_engine(tw, item.tensor, layers=tw.showcase, border=twin_border)
fig = figures.mirror_engine_figure(check, grey=True)
run.save_figure(fig, f"02_mirror_vs_engine_{tw.name}", dpi=dpi, **twin_stamp)
for layer, c, rel in zip(check.layers, check.channels, check.relative):
    print(f"{layer:6} ch{c:<3} max |mirror - engine| / max |engine| < 1e-5: {rel < 1e-5}")
_ = run.claim(analysis.mirror_claim(check, key=tw.name, model=tw.name))

# %% [markdown]
# ## Build it yourself 1: the deconvnet ReLU as a backward hook
# The engine changes only what happens at each ReLU on the way down. Write a *full backward hook*
# `hook(module, grad_input, grad_output)` for `nn.ReLU` that returns a one-element tuple: the signal
# to pass on. The deconvnet **rectifies what arrives from above** (`grad_output[0]`) and ignores
# where the forward input was positive. *Predict first*: what do you get if you return
# `grad_input` unchanged? (Hint: that is autograd's own answer.)

# %%
def deconvnet_hook(module, grad_input, grad_output):
    raise NotImplementedError  # your code here


# %%
course.check("02.deconvnet_relu", deconvnet_hook);

# %% [markdown]
# ## Build it yourself 2: unpooling with switches
# Write `unpool(signal, switches, size)`: put each value of the pooled `signal` (N×C×h×w) back at
# the position its switch recorded (`switches`: the flat indices that
# `F.max_pool2d(..., return_indices=True)` returned), in an N×C×H×W map of zeros with `(H, W) =
# size`. Hint: `F.max_unpool2d` does exactly this for non-overlapping pools (the checker's network
# has 2×2 pools); with ZF's overlapping 3×3/2 pools two windows can share a switch, and the mirror
# adds both values (what autograd does). The checker plugs your function into the mirror.
# *Predict first*: what would copying each value to the whole 2×2 window do to the projection?

# %%
def unpool(signal, switches, size):
    raise NotImplementedError  # your code here


# %%
course.check("02.unpool_switches", unpool);

# %% [markdown]
# ## The second model: where deconvnet projections turn into texture
# The same projections on a photo with the edge-tuned HED stack (offline). The low layers look like
# the twin's: small oriented edges and colour. From relu3_3 up, the deconvnet projections become
# **stripe and checkerboard textures** spread over the receptive field. Two things produce them:
#
# * **Unpooling + transposed filters = a strided transposed convolution.** Unpooling puts each value
#   at one position of a 2×2 window, leaving the other three zero; the next transposed 3×3 filter
#   then paints around those isolated points. A 3×3 kernel at stride 2 overlaps unevenly (3 is not a
#   multiple of 2), so some output pixels receive more paint than their neighbours: a periodic
#   pattern at the pool's period — and after several pools, at several periods at once.
# * **Edge-tuned units and a rule that ignores the forward pass.** HED's filters were fine-tuned into
#   oriented edge detectors (high-pass, alternating signs). The deconvnet rectifies the signal coming
#   down but never consults the forward ReLU masks, so nothing confines the signal to what was
#   active for this photo: each step adds positive-only oriented stripes over the whole field.
#   Guided backpropagation differs *only* by keeping those masks (notebook 09), and its projections
#   of the same units show the eyes.
#
# The artefact figure puts the two rules side by side for the same units and measures each
# projection's **high-frequency share**: the part of its power at periods under 4 pixels (near 0 for
# smooth image structure; large for stripes). The claim compares the two rules over the upper
# layers' units.

# %%
lm = zfhelpers.load_model(model, profile, task="project")
photo = zfhelpers.prepare(image, lm.preprocess)
stamp = dict(model=lm.label, data=f"{photo.name} (data/images)")
run.describe(model=f"{tw.label}; {lm.label}", data=f"{twin_stamp['data']}; {stamp['data']}")
rows = strongest_units(lm, photo.tensor, layers=lm.showcase, n_channels=n_channels, border=border,
                       rules=("deconvnet", "guided"))  # fmt: skip
fig = figures.layer_projections_figure(photo.display, rows,
                                       title=f"Deconvnet projections of single activations, {lm.name}, {photo.name}")  # fmt: skip
run.save_figure(fig, f"02_projections_{lm.name}", dpi=dpi, **stamp);

# %%
upper = rows[2:]
fig = figures.artefacts_figure(photo.display, [r.head(1) for r in upper],
                               title=f"Same units, two rules: {lm.name}, {photo.name}")  # fmt: skip
run.save_figure(fig, f"02_artefacts_{lm.name}", dpi=dpi, **stamp)
run.claim(analysis.artefact_claim(upper, key=lm.name, model=lm.name));

# %% [markdown]
# ## Claims
# What was measured above, with its interval or test and the verdict against the paper statement it
# answers (`python -m zfhelpers claims` prints every notebook's).

# %%
print(table.text({"02": run.results}))

# %% [markdown]
# ## Explore (interactive)
# Layer, channel and photo on the second model: the strongest activation of that channel on that
# photo, projected. It opens on the channel whose strongest activation is largest; relu and pool
# layers only (a conv unit projects like the ReLU unit above it).

# %% tags=["nbval-ignore-output"]
explorer = widgets.explore(
    interactive, lambda: explorers.projection_explorer(lm, images, image=image, layer=lm.showcase[2], border=border)
)
