"""Everything a notebook touches besides the methods: the run (:func:`start`), figure saving
(:mod:`.save`), plots (:mod:`.plots`) and explorers (:mod:`.widgets`)."""

from .session import NotebookRun, setup, start

__all__ = ["NotebookRun", "setup", "start"]
