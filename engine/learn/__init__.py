"""Learning: the five GAN systems (models, losses, training step), training, checkpoints, inference.

Checked in tests/engine/test_models.py, test_systems.py, test_training_loop.py and test_inference.py.
Public names resolve lazily (torch is imported only when a name that needs it is used).
"""

from decongan.engine._lazy import lazy_api

_API = {
    "create_model": "models", "list_models": "models", "register_model": "models",
    "Preset": "presets", "list_presets": "presets", "load_preset": "presets",
    "TrainConfig": "training", "iter_train": "training", "train": "training",
    "RunConfig": "checkpoint", "RunError": "checkpoint", "load_generator": "checkpoint",
    "ExportError": "checkpoint", "export_torchscript": "checkpoint", "load_exported": "checkpoint",
    "LoadedModel": "inference", "iter_predict_image": "inference", "load_model": "inference",
    "predict_array": "inference", "predict_image": "inference",
    "TrainingDomain": "domain", "DomainCheck": "domain", "check_domain": "domain", "load_domain": "domain",
}
__all__ = sorted(_API)
__getattr__, __dir__ = lazy_api(__name__, _API, globals())
