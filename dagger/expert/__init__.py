"""Experts: Stable-Baselines3 checkpoints that label states, and how the shipped ones (`experts/`) are made.

A checkpoint can come from anyone, so by default (`expert.trust=false`) loading one never runs code
that the file carries; `expert.trust=true` loads with SB3's own `cls.load` and `pickle.load` instead:
for files you trust.

    layout.py      the algorithms and their SB3 classes; finding a checkpoint (rl-baselines3-zoo's layout, config.yml)
    safe_zip.py    a model .zip read without running code: the algorithm it holds, each pickled field rebuilt
    statistics.py  VecNormalize's observation statistics, read without running code; ObsNormalizer
    expert.py      ExpertConfig (the `expert` group), the Expert (`act(obs) -> actions`) and load_expert
    training.py    TrainConfig (conf/train.yaml), training, checkpointing and resuming with SB3 (experts/train.py)
    work_dir.py    the work folder's state: progress.json, the candidates' folders, evaluations.csv
    publishing.py  choosing among candidates, shipping the best into experts/, the manifest and its README table
"""
