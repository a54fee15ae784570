"""Train, resume or ship an expert: python experts/train.py env=hopper expert=sac [publish_only=true]."""
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dagger.config import ConfigError, check_overrides, register_resolvers
from dagger.schemas import parse  # noqa: E402
from dagger.cli import check_output_dir
from dagger.files import existing_folders  # noqa: E402
from dagger.expert.publishing import publish  # noqa: E402
from dagger.expert.training import TrainConfig, train  # noqa: E402

register_resolvers()
EXISTING: set[Path] = set()  # work_dir when it was there before this command (Hydra makes it otherwise)


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> None:
    try:
        settings = parse(TrainConfig, cfg)  # every key, before anything is built or written
        if settings.publish_only:
            publish(settings)
        else:
            train(settings)
    except ConfigError as err:
        folder = Path(HydraConfig.get().runtime.output_dir)
        if folder.resolve() not in EXISTING:
            remove_if_empty(folder)  # Hydra makes work_dir before the checks
        sys.exit(f"error: {err}")


def remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


if __name__ == "__main__":
    try:
        check_overrides(sys.argv[1:])  # Hydra's own parse errors do not name the key
        check_output_dir(sys.argv[1:], ("work_dir", "ship_dir", "hydra.run.dir"))  # Hydra makes work_dir first
        EXISTING.update(existing_folders(sys.argv[1:], ("work_dir", "hydra.run.dir")))
    except ConfigError as err:
        sys.exit(f"error: {err}")
    main()
