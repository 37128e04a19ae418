"""The little that training needs to know about ``torchrun`` DDP.

``torchrun`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; when ``WORLD_SIZE > 1`` the
training loop joins the process group (NCCL on GPUs, Gloo on CPUs), shards the data with a
``DistributedSampler`` and lets only rank 0 validate and write files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in a distributed run.

    Attributes:
        world_size: Number of processes (1 when not distributed).
        rank: Global rank of this process.
        local_rank: Rank on this machine (the GPU index).
    """

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """True when running under DDP with more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on the process that validates, reports and writes files."""
        return self.rank == 0

    @classmethod
    def from_env(cls) -> DistContext:
        """Read the ``torchrun`` environment variables."""
        return cls(
            world_size=int(os.environ.get("WORLD_SIZE", "1")),
            rank=int(os.environ.get("RANK", "0")),
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        )


def init_process_group(ctx: DistContext, device_type: str) -> bool:
    """Join the process group if needed.

    Returns:
        True when this call created the group (the caller should destroy it at the end).
    """
    if not ctx.enabled or dist.is_initialized():
        return False
    backend = "nccl" if device_type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, rank=ctx.rank, world_size=ctx.world_size)
    return True


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op when not distributed)."""
    if ctx.enabled and dist.is_initialized():
        dist.barrier()


def any_rank_true(ctx: DistContext, flag: bool, device: torch.device) -> bool:
    """True when ``flag`` is true on at least one rank (a collective: every rank must call)."""
    if not (ctx.enabled and dist.is_initialized()):
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item() > 0)
