"""What notebooks 11 and 12 share before any inversion: the profile's model with average pools (as
Xia et al. ran VGG), the content photos and paintings at one square size, the recipe, and the
provenance stamp of their figures.

The size is the user's: ``size=None`` takes the profile's default (:data:`DEFAULT_SIZE`, the
authors' 512 px on the paper profile) and says so; an explicit size is never overridden."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .. import checks
from ..data.images import Sample, prepare
from ..models.zoo import LoadedModel, check_profile, load_model
from ..paths import data_dir
from .optimize import Recipe, get_recipe

#: Image side when ``size`` is None: small enough for a 2-core CPU offline; Xia et al.'s 512 px
#: long edge on the paper profile (docs/papers.md §3.1).
DEFAULT_SIZE = {"offline": 48, "paper": 512}


@dataclass
class InversionSetup:
    model: LoadedModel  # average-pooled
    profile: str
    size: int
    recipe: Recipe
    photos: dict[str, Sample]
    paintings: dict[str, Sample] = field(default_factory=dict)

    def stamp(self, recipe: Recipe | None = None) -> dict[str, str]:
        """``model=`` and ``data=`` for :func:`zfhelpers.notebook.save.save_figure` (``recipe``: the
        one that made the figure, if not the set-up's)."""
        rec = recipe or self.recipe
        data = f"{', '.join(self.photos)} (data/images)"
        if self.paintings:
            data += f" + {', '.join(self.paintings)} (data/paintings, public domain)"
        data += f", {self.size}x{self.size} px, recipe {rec.name}, {rec.max_steps} steps"
        return {"model": self.model.label, "data": data}

    def describe(self) -> str:
        return f"{self.model.label} | {self.stamp()['data']}"


def load(
    profile: str = "offline",
    model: str = "",
    images: Sequence[str] = ("chelsea",),
    *,
    size: int | None = None,
    recipe: str | Recipe = "modern",
    steps: int | None = None,
    paintings: Sequence[str] = (),
) -> InversionSetup:
    """The inversion model of ``profile`` (``model`` empty = the zoo's model for task "invert"),
    average-pooled; ``images`` (sample names or paths) and ``paintings`` (names in data/paintings)
    at ``size`` px; ``recipe`` with ``steps`` optimisation steps (None: the recipe's own)."""
    check_profile(profile)
    if size is None:
        size = DEFAULT_SIZE[profile]
        print(f"size: {size} px (the {profile} profile's default; pass size= to change it)")
    size = checks.positive_int(size, name="size", minimum=16)
    if not images:
        raise checks.InputError("images is empty; give at least one photo (e.g. ['chelsea'])")
    lm = load_model(model or None, profile, task="invert").avg_pooled()
    pre = lm.preprocess.resized(size)
    rec = get_recipe(recipe)
    if steps is not None:
        rec = rec.with_(max_steps=checks.positive_int(steps, name="steps"))
    photos = {s.name: s for s in (prepare(src, pre) for src in images)}
    known = sorted(f.stem for f in (data_dir() / "paintings").glob("*.jpg"))
    for p in paintings:
        checks.choice(p, known, name="painting")
    art = {p: prepare(data_dir() / "paintings" / f"{p}.jpg", pre, name=p) for p in paintings}
    return InversionSetup(lm, profile, size, rec, photos, art)
