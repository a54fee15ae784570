"""What a pixel student's frames cost: seconds per 1,000 student steps of rendering (obs=pixels, one frame per step,
shadows and reflections off) against 1,000 steps of the simulator itself, the median of 5 repeats, per task:
python benchmarks/render_cost.py [--size 64] [--tasks InvertedPendulum-v5 Hopper-v5]"""
import argparse
import os
import statistics
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

from dagger.envs import visited_states  # noqa: E402
from dagger.views import Pixels  # noqa: E402

STEPS, REPEATS = 1_000, 5


def states_of(env: gym.Env) -> tuple[np.ndarray, float]:
    """STEPS observations of random actions (episodes restart), and the seconds the simulator took for them."""
    env.action_space.seed(0)
    start = time.perf_counter()
    states = visited_states(env, STEPS, lambda obs: env.action_space.sample(), seed=0)
    return states, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--tasks", nargs="+", default=["InvertedPendulum-v5", "Hopper-v5"])
    args = parser.parse_args()
    print("| task | frame | render s / 1,000 steps | frames/s | simulate s / 1,000 steps | render / simulate |")
    print("|---|---|---|---|---|---|")
    for task in args.tasks:
        env = gym.make(task)
        pixels = Pixels(env, (args.size, args.size), proprio=False)
        pixels.frames(np.zeros((1, pixels.positions)))  # the renderer starts once, outside the timing
        renders, sims = [], []
        for _ in range(REPEATS):
            states, simulate = states_of(env)
            start = time.perf_counter()
            pixels.frames(states)
            renders.append(time.perf_counter() - start)
            sims.append(simulate)
        render, sim = statistics.median(renders), statistics.median(sims)
        print(f"| {task} | {args.size}x{args.size} | {render:.2f} | {STEPS / render:,.0f} | {sim:.2f} | "
              f"{render / sim:.1f} |")


if __name__ == "__main__":
    main()
