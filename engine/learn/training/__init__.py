"""Training of the seed GANs: data and patches, the GAN step, validation, the resumable loop, and its configuration.

Public entry points: :class:`TrainConfig`, :func:`iter_train` / :func:`train` (see
:mod:`engine.learn.training.loop`), :func:`prepare_training_data` (:mod:`engine.learn.training.data`),
:class:`PatchSampler` (:mod:`engine.learn.training.patches`); one iteration of a GAN system is
:func:`engine.learn.training.step.train_step`. Submodules import torch lazily where they can, so
importing this package stays cheap.
"""

from decongan.engine.learn.training.config import TrainConfig
from decongan.engine.learn.training.data import DataError, prepare_training_data
from decongan.engine.learn.training.loop import RunSummary, TrainingError, iter_train, train
from decongan.engine.learn.training.patches import PatchSampler

__all__ = ["DataError", "PatchSampler", "RunSummary", "TrainConfig", "TrainingError", "iter_train",
           "prepare_training_data", "train"]
