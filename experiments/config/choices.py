"""The one home of every list of choices of a config key, and of the data's fixed seed.

The config sections validate against these tuples, the CLI offers them as ``choices``, and the
code that acts on a choice (``effnas.experiments.train.optim``, ``effnas.experiments.data``) reads
them from here: a new choice is added in one place.
"""

from __future__ import annotations

from effnas.search_spaces.counts import LATENCY_RUNTIMES
from effnas.search_spaces.rules import DEPTH_ROUNDINGS
from effnas.search_spaces.spec import PADDINGS

#: ``train.optimizer`` (``effnas.experiments.train.optim.make_optimizer``).
OPTIMIZERS = ("sgd", "adamw", "rmsprop")
#: ``train.schedule``: the learning-rate schedule after warm-up (``effnas.experiments.train.optim.lr_factor``).
SCHEDULES = ("cosine", "linear", "step", "constant")
#: ``train.augment`` (``effnas.experiments.data.augment``).
AUGMENTS = ("auto", "none", "crop", "crop_flip", "flip_translate", "rrc_flip", "randaugment", "autoaugment")
#: Augment policies drawn per image from kornia (N=2, M=9 for RandAugment; AutoAugment's ImageNet policy).
PER_IMAGE_AUGMENTS = ("autoaugment", "randaugment")
#: ``data.path``: how an image folder is read (``effnas.experiments.data.files.folders``).
DATA_PATHS = ("auto", "memory", "stream")
#: ``train.precision`` (``effnas.experiments.train.loop``).
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: ``train.device``: ``auto`` is a GPU when one is visible, else the CPU (``effnas.experiments.train.devices``).
DEVICES = ("auto", "cpu", "cuda")
#: ``train.track``: where each epoch's metrics go for watching runs live
#: (``effnas.experiments.train.steps.track``): TensorBoard event files in the run directory, an MLflow
#: run (when the ``mlflow`` package is installed), or nowhere.
TRACKERS = ("tensorboard", "mlflow", "none")
#: ``data.dataset`` names that are built in (no path) ...
BUILTIN_DATASETS = ("digits", "mnist5k", "shapes")
#: ... and those read from ``NAME:PATH`` (``effnas.experiments.data.datasets``).
ON_DISK_DATASETS = ("cifar10", "cifar100", "imagefolder", "shards")

#: ``search.cost``: what the reward's T measures (``effnas.nas.objective``): MACs, batch-1 latency, or
#: EfficientNetV2's measured training step time.
SEARCH_COSTS = ("macs", "latency", "train_step")
#: ``search.trainer``: real training, the seeded surrogate, or a benchmark table's lookup
#: (``effnas.experiments.pipeline.plan.search_trainer``).
SEARCH_TRAINERS = ("train", "surrogate", "table")
#: ``search.pruner``: what stops a candidate early (``effnas.nas.study.make_pruner``, whose ``PRUNERS`` it equals:
#: the config does not import the search's libraries).
SEARCH_PRUNERS = ("noise_floor", "median", "asha", "hyperband")
#: ``supernet.sampling``: one random sub-network per step, or the sandwich rule (largest, smallest, random).
SAMPLINGS = ("uniform", "sandwich")
#: ``grid.depth_rounding`` / ``family.depth_rounding`` (``effnas.search_spaces.rules``), ``search.latency_runtime``
#: (``effnas.search_spaces.counts``) and ``effnas weights import --padding`` (``effnas.search_spaces.spec``) are
#: choices of the search space: their lists live there and are re-exported here.

#: What ``grid.rule`` searches: compound's (alpha, beta, gamma) lattice, or fast scaling's A in
#: [0, 1] (``effnas.scaling.rules.fast_points``).
GRID_RULES = ("compound", "fast")

#: The fixed seed of everything about the data that must not change with a run's seed: the
#: carved test splits, the sample an image folder's statistics are measured on, the order
#: ``effnas data pack`` writes (the EfficientNet arXiv date, 2019-05-28).
DATA_SEED = 20190528

__all__ = ["AUGMENTS", "BUILTIN_DATASETS", "DATA_PATHS", "DATA_SEED", "DEPTH_ROUNDINGS", "DEVICES", "GRID_RULES",
           "LATENCY_RUNTIMES", "ON_DISK_DATASETS", "OPTIMIZERS", "PADDINGS", "PER_IMAGE_AUGMENTS", "PRECISIONS",
           "SAMPLINGS", "SCHEDULES", "SEARCH_COSTS", "SEARCH_PRUNERS", "SEARCH_TRAINERS", "TRACKERS"]
