"""Train, resume or ship an expert: python experts/train.py env=hopper expert=sac [publish_only=true]."""
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dagger.config import ConfigError, register_resolvers  # noqa: E402
from dagger.expert_training import publish, train  # noqa: E402

register_resolvers()


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> None:
    try:
        if cfg.publish_only:
            publish(cfg)
        else:
            train(cfg)
    except ConfigError as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
