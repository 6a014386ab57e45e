"""Images: CIFAR10 (and offline demo sets) drifting in pixel and feature space, FID/KID, training.

Modules: :mod:`.config` (frozen configs and presets), :mod:`.data` (CIFAR10 through torchvision and the
offline demo sets), :mod:`.models` (one-step conv generators), :mod:`.features` (frozen encoders with
feature groups and their layouts), :mod:`.drift_loss` (the feature-space drifting loss, built on
:func:`drift_core.loss.drifting_loss`), :mod:`.batched_drift` (many drift problems at once, for groups
drifted per location), :mod:`.projection` (a feature group's fixed PCA plane, for drawing),
:mod:`.fid` (Inception FID/KID), :mod:`.train` (the trainer, EMA, DDP), :mod:`.pair` (the images page's
baseline/lookahead pair as a lock-step :class:`~drift_core.run.Run`, its FID/KID and per-arm
checkpoints), :mod:`.render` (image tiles).
No UI or plotting library is imported.
"""
