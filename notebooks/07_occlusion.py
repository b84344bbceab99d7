# %% [markdown]
# # 07 · Occlusion sensitivity (ZF §4.2, Fig. 7)
#
# Is the classifier really using the object, or its context? ZF slide a grey square over the image
# and, at every occluder position, record **(b)** the total activation of the top-layer feature map
# that is strongest on the unoccluded image, **(d)** the probability of the correct class and
# **(e)** the most probable class; **(c)** shows what that feature map responds to, projected to
# pixels on this image and on others.
#
# `zfhelpers.methods.occlusion.occlusion` computes (b), (d) and (e) in one batched pass (equal to a naive
# one-position-at-a-time loop to 1e-5, tested). ZF do not state the occluder's size, stride or grey
# level; they are parameters here and printed on the figure. Offline: MobileNetV2 (its `head` block
# stands in for "layer 5"; projections use guided backprop, since the deconvnet has no switches in
# this network — see notebook 09 — and show the map's strongest *unclipped* unit, since a ReLU6 unit
# at its ceiling passes no gradient). Paper profile: AlexNet `relu5`, deconvnet projections.

# %% tags=["parameters"]
profile = "offline"  # "offline" (MobileNetV2) or "paper" (AlexNet)
model = ""  # zoo model; empty — the profile's default
images = ["chelsea", "squirrel", "coffee"]  # need a class in data/images/labels.json
size = 56  # occluder side (pixels of the 224×224 input)
stride = 28  # occluder step (pixels)
fill = 0.0  # occluder value in normalised units (0 is the dataset mean, mid grey)
layer = ""  # feature layer for panels b/c; empty — the model's top showcase layer
dpi = 100  # resolution of saved figures
interactive = True  # widget explorer (papermill sets False)

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

import zfhelpers
from zfhelpers.data.display import projection_rgb
from zfhelpers.data.images import image_labels
from zfhelpers.methods.occlusion import occlusion
from zfhelpers.methods.projection import unit_projection
from zfhelpers.notebook import widgets

zfhelpers.notebook.setup(seed=0)
lm = zfhelpers.load_model(model or None, profile)
layer = layer or lm.role("layer5")
rule = lm.spec.projection_rule
prepared = {name: zfhelpers.prepare(name, lm.preprocess) for name in images}
labels = image_labels()
print(f"{lm.name}: feature layer {layer}, projection rule {rule}; occluder {size}px, stride {stride}, fill {fill}")


def occlusion_row(axes, name, others):
    s = prepared[name]
    res = occlusion(lm, s.tensor, size=size, stride=stride, fill=fill, target=labels[name], layer=layer, batch_size=32)
    example = s.display.copy()
    y0, x0 = res.ys[len(res.ys) // 2], res.xs[len(res.xs) // 3]
    example[y0 : y0 + size, x0 : x0 + size] = lm.preprocess.denormalize(torch.full((3, 1, 1), fill)).permute(1, 2, 0).numpy()
    axes[0].imshow(example)
    axes[0].set_title(f"(a) {name}: {lm.categories[res.target]}\np = {res.base_prob:.2f} unoccluded", fontsize=8)
    # each cell is drawn at its occluder's centre, so the maps line up with the image
    half_y, half_x = size / 2 - stride / 2, size / 2 + stride / 2
    extent = (res.xs[0] + half_y, res.xs[-1] + half_x, res.ys[-1] + half_x, res.ys[0] + half_y)
    im = axes[1].imshow(res.feature_sum.numpy(), cmap="viridis", extent=extent)
    axes[1].set_title(f"(b) Σ {layer} ch{res.channel}\n(unoccluded {res.base_feature_sum:.0f})", fontsize=8)
    plt.colorbar(im, ax=axes[1], fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)
    # (c) the strongest unit of that map, projected on this image and on the other photos
    for ax, other in zip(axes[2:4], [name, *others][:2]):
        p = unit_projection(lm, prepared[other].tensor, layer=layer, channels=res.channel, rule=rule)
        ax.imshow(projection_rgb(p.maps[0, 0]))
        ax.set_title(f"(c) ch{res.channel} on {other}", fontsize=8)
    im = axes[4].imshow(res.prob.numpy(), cmap="magma", vmin=0, vmax=1, extent=extent)
    axes[4].set_title(f"(d) p({lm.categories[res.target]})", fontsize=8)
    plt.colorbar(im, ax=axes[4], fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)
    classes, inverse = torch.unique(res.top_class, return_inverse=True)
    counts = torch.bincount(inverse.flatten())
    order = counts.argsort(descending=True)[:6]
    cmap = plt.get_cmap("tab10")
    label_map = np.full(res.top_class.shape, len(order), dtype=float)
    for rank, idx in enumerate(order.tolist()):
        label_map[(inverse == idx).numpy()] = rank
    axes[5].imshow(label_map, cmap=plt.matplotlib.colors.ListedColormap([cmap(i) for i in range(len(order))] + [(0.8, 0.8, 0.8)]),
                   vmin=-0.5, vmax=len(order) + 0.5, extent=extent, interpolation="nearest")
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(r)) for r in range(len(order))]
    axes[5].legend(handles, [lm.categories[int(classes[i])] for i in order.tolist()], fontsize=6, loc="upper left",
                   bbox_to_anchor=(1.0, 1.0), frameon=False)
    axes[5].set_title("(e) most probable class", fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in (axes[1], axes[4], axes[5]):
        ax.set_xlim(0, s.display.shape[1])
        ax.set_ylim(s.display.shape[0], 0)
    return res


# %%
fig, axes = plt.subplots(len(images), 6, figsize=(17, 3.0 * len(images)), squeeze=False,
                         gridspec_kw={"width_ratios": [1, 1.15, 1, 1, 1.15, 1.6]})
results = {}
for r, name in enumerate(images):
    results[name] = occlusion_row(axes[r], name, [o for o in images if o != name])
fig.suptitle(f"Occlusion sensitivity (ZF Fig. 7), {lm.name}: grey square {size}×{size} px, stride {stride}, "
             f"fill {fill} (normalised; 0 = dataset mean)", fontsize=10)
fig.tight_layout(rect=(0, 0, 1, 0.97))
zfhelpers.save_figure(fig, f"07_occlusion_{lm.name}", dpi=dpi, model=lm.label, data=", ".join(images) + " (data/images)",
                      params={"size": size, "stride": stride, "fill": fill, "layer": layer})
plt.show()

# %% [markdown]
# ## How much does the object matter?
# The largest drop of p(true class) over all occluder positions, and the fraction of positions where
# the top label changes.

# %%
for name, res in results.items():
    flips = float((res.top_class != res.target).float().mean())
    print(f"{name:9} p unoccluded {res.base_prob:.2f}, lowest {float(res.prob.min()):.2f}; "
          f"label differs from '{lm.categories[res.target]}' at {flips:.0%} of positions")

# %% [markdown]
# ## Explore (interactive)
# Occluder size, stride and image.

# %% tags=["nbval-ignore-output"]
if interactive:
    import ipywidgets

    def render(size_, stride_, image):
        global size, stride
        size, stride = size_, min(stride_, size_)
        fig, axes = plt.subplots(1, 6, figsize=(17, 3.0), gridspec_kw={"width_ratios": [1, 1.15, 1, 1, 1.15, 1.6]})
        occlusion_row(axes, image, [o for o in images if o != image])
        fig.tight_layout()
        return fig

    explorer = widgets.controls_explorer(render, {
        "size_": ipywidgets.IntSlider(value=size, min=16, max=112, step=8, description="size", continuous_update=False),
        "stride_": ipywidgets.IntSlider(value=stride, min=4, max=56, step=4, description="stride", continuous_update=False),
        "image": ipywidgets.Dropdown(options=images, value=images[0], description="image")})
    display(explorer.ui)
