"""Experiment configuration: one frozen dataclass per concept, read from TOML, ``--set`` overrides
or keyword arguments (:mod:`.schema` the experiment and its training sections, :mod:`.stages` the
stage sections, :mod:`.sections` the typed-section machinery, ``presets/`` the named configs).

>>> from effnas.experiments.config import load_config
>>> load_config("demo").search.space
'nano'
"""

from effnas.experiments.config.schema import (
    AUGMENTS,
    CONFIG_DIR,
    DATA_PATHS,
    OPTIMIZERS,
    SCHEDULES,
    SECTIONS,
    DataConfig,
    ExperimentConfig,
    JobConfig,
    TrainConfig,
    load_config,
)
from effnas.experiments.config.sections import Section
from effnas.experiments.config.stages import (
    BackbonesConfig,
    FamilyConfig,
    GridConfig,
    ProxyConfig,
    RunConfig,
    SearchConfig,
    estimator_kind,
)
from effnas.experiments.config.supernet import SupernetConfig

__all__ = [
    "AUGMENTS", "CONFIG_DIR", "DATA_PATHS", "OPTIMIZERS", "SCHEDULES", "SECTIONS", "BackbonesConfig", "DataConfig",
    "ExperimentConfig", "FamilyConfig", "GridConfig", "JobConfig", "ProxyConfig", "RunConfig", "SearchConfig",
    "Section", "SupernetConfig", "TrainConfig", "estimator_kind", "load_config",
]
