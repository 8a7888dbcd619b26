"""Checkpoints: a training run's folder and everything that reads or writes trained weights.

One module per job:

``layout``     the run folder's layout, ``config.json`` (:class:`RunConfig`), atomic folder replacement
``lock``       the folder's lock (one training process per folder) and clean-up after a killed process
``weights``    safetensors save/load of one network (never pickle)
``state``      checkpoints to resume from, the best generator, the progress log
``generator``  a trained generator rebuilt from its run folder (:func:`load_generator`)
``published``  official Real-ESRGAN / BasicSR checkpoints imported into our models
``export``     TorchScript export of a trained generator (and loading it back)

Checked in tests/engine/test_checkpoint.py, test_models.py (published checkpoints),
tests/app/test_train_killed.py (lock, recovery) and test_cli_train_predict.py (export).
Public names resolve lazily from here (torch is imported only when a name that needs it is used).
"""

from decongan.engine._lazy import lazy_api

_API = {
    **dict.fromkeys(("RUN_FORMAT", "CONFIG_NAME", "PROGRESS_NAME", "LAST", "BEST", "STATE_NAME",
                     "TRAINING_STATE_NAME", "GENERATOR_NAME", "RunError", "ChannelInfo", "DataInfo", "RunConfig",
                     "config_path", "checkpoint_dir", "best_dir", "save_run_config", "load_run_config",
                     "is_run_dir"), "layout"),
    **dict.fromkeys(("LOCK_NAME", "RUN_ENTRIES", "RunLock", "read_run_lock", "acquire_run_lock",
                     "clean_stale_temporaries", "foreign_entries", "clear_run"), "lock"),
    **dict.fromkeys(("save_weights", "load_weights"), "weights"),
    **dict.fromkeys(("save_checkpoint", "has_checkpoint", "load_checkpoint", "save_best", "read_best_metrics",
                     "append_progress", "read_progress", "truncate_progress"), "state"),
    **dict.fromkeys(("generator_kwargs", "build_generator", "generator_weights_path", "load_generator"),
                    "generator"),
    **dict.fromkeys(("CheckpointImportError", "ImportReport", "read_checkpoint_state", "import_checkpoint"),
                    "published"),
    **dict.fromkeys(("EXPORT_FORMAT", "ExportError", "ExportResult", "script_generator", "export_torchscript",
                     "load_exported"), "export"),
}
__all__ = sorted(_API)
__getattr__, __dir__ = lazy_api(__name__, _API, globals())
