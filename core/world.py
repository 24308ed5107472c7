"""Which process of a torchrun launch this is, and which part of every global batch it takes.

torchrun starts one process per device and tells each its place through the environment (RANK, WORLD_SIZE,
LOCAL_RANK, and MASTER_ADDR/PORT for the rendezvous). A process without those variables is a world of one,
so everything here is a no-op for an ordinary run.

`optim.batch_size` is the global batch: each of N ranks takes its contiguous 1/N of every batch (the same
seeded order and augmentation on every rank), and DistributedDataParallel averages the gradients, so N
processes take the same steps as one process would, up to the order of floating-point sums.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def leader(self) -> bool:
        """Rank 0 alone logs, checkpoints and reads live-control requests."""
        return self.rank == 0

    @property
    def shard(self) -> tuple[int, int]:
        """(rank, size): which part of every global batch this process takes."""
        return self.rank, self.size


def current_world() -> World:
    """This process's place in a torchrun launch, or a world of one."""
    size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if size <= 1:
        return World()
    return World(rank=int(os.environ["RANK"]), size=size, local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def shard_bounds(lo: int, hi: int, shard: tuple[int, int]) -> tuple[int, int]:
    """The part [lo', hi') of the global batch [lo, hi) that rank `shard[0]` of `shard[1]` takes: contiguous,
    sizes differing by at most one (only a last, partial batch can be uneven)."""
    rank, size = shard
    n = hi - lo
    return lo + n * rank // size, lo + n * (rank + 1) // size
