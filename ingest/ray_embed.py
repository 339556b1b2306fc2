"""Embedding on Ray: the new or changed chunks of an ingest as Ray Data `map_batches` over an
actor pool, one embedder per actor (CPU here; `gpus_per_actor` where a cluster has GPUs).

Without an address a local Ray is started for the run and stopped after it; with one (`auto`,
`ray://host:10001` or `host:6379`) the run joins that cluster, whose nodes need llm-atlas
installed. The rest of ingest does not change: rows come back in their order, and the pipeline
keys vectors by the embedded text's hash as it does in process.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections import Counter
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from ingest.errors import ClusterError, MissingDependency

LOCAL = "local"


class RayJob(BaseModel):
    """Where and how wide the embedding runs."""

    address: str = LOCAL  # 'local' starts a Ray for this run; anything else is passed to ray.init
    actors: int = Field(default=2, ge=1)
    batch_size: int = Field(default=64, ge=1)
    cpus_per_actor: float = Field(default=1.0, gt=0)
    gpus_per_actor: float = Field(default=0.0, ge=0)


class RayReport(BaseModel):
    """What ran where: the proof that the actors, not the driver, embedded the texts."""

    address: str
    actors: int
    texts: int
    texts_per_process: dict[str, int]
    driver_pid: int
    seconds: float


class EmbedActor:
    """One embedder per actor, loaded once and kept for every batch the actor gets."""

    def __init__(self, embedder: str, batch_size: int, threads: int) -> None:
        from ingest.embed import make_embedder

        self.embedder = make_embedder(embedder, batch_size, threads=threads)
        self.pid = os.getpid()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self.embedder.encode([str(text) for text in batch["text"]])
        return {"row": batch["row"], "vector": vectors, "pid": np.full(len(vectors), self.pid, dtype=np.int64)}


def _ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise MissingDependency("ray", "ingest --ray", exc, install="'llm-atlas[ray]'") from exc
    return ray


def quiet(ray: Any) -> None:
    """Ray Data's progress lines would interleave with ingest's own progress bar."""
    for name in ("ray.data", "ray"):
        logging.getLogger(name).setLevel(logging.WARNING)


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds on a host:port nobody listens on (ray.init would retry for minutes)."""
    found = re.fullmatch(r"(?:ray://)?\[?([\w.:-]+?)\]?:(\d+)", address)
    if not found:
        return  # 'auto' and the like: Ray resolves them itself
    try:
        socket.create_connection((found[1], int(found[2])), timeout=timeout).close()
    except OSError as exc:
        raise ClusterError(f"Cannot reach the Ray cluster at '{address}': {exc}") from exc


def start(job: RayJob) -> bool:
    """Connect to (or start) Ray; True when this call started it and so must stop it."""
    ray = _ray()
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
    if job.address == LOCAL:
        # The pool's CPUs and no more: a local Ray would otherwise size itself to the machine.
        options["num_cpus"] = max(os.cpu_count() or 1, int(job.actors * job.cpus_per_actor + 0.999))
    else:
        check_reachable(job.address)
        options["address"] = job.address
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(f"Cannot reach the Ray cluster at '{job.address}': {exc}") from exc
    return True


def embed_on_ray(texts: list[str], embedder: str, job: RayJob) -> tuple[np.ndarray, RayReport]:
    """Embed `texts` on a Ray actor pool; the vectors in the order of `texts`."""
    ray = _ray()
    started_at = time.perf_counter()
    started = start(job)
    quiet(ray)
    try:
        blocks = max(1, min(len(texts), job.actors * 4))  # enough blocks to keep every actor busy
        dataset = ray.data.from_items(
            [{"row": row, "text": text} for row, text in enumerate(texts)], override_num_blocks=blocks
        )
        embedded = dataset.map_batches(
            EmbedActor,
            fn_constructor_kwargs={
                "embedder": embedder,
                "batch_size": job.batch_size,
                "threads": max(1, int(job.cpus_per_actor)),
            },
            compute=ray.data.ActorPoolStrategy(size=job.actors),
            batch_size=job.batch_size,
            batch_format="numpy",
            num_cpus=job.cpus_per_actor,
            num_gpus=job.gpus_per_actor or None,
        )
        vectors: np.ndarray | None = None
        per_process: Counter[str] = Counter()
        try:
            for batch in embedded.iter_batches(batch_size=None, batch_format="numpy"):
                block = np.asarray(np.stack(list(batch["vector"])), dtype=np.float32)
                if vectors is None:
                    vectors = np.zeros((len(texts), block.shape[1]), dtype=np.float32)
                vectors[np.asarray(batch["row"], dtype=np.int64)] = block
                per_process.update(str(pid) for pid in batch["pid"].tolist())
        except ray.exceptions.RayError as exc:
            cause = str(exc).strip().splitlines()
            raise ClusterError(f"Embedding on Ray failed: {cause[-1] if cause else exc.__class__.__name__}") from exc
        address = ray.get_runtime_context().gcs_address
    finally:
        if started:
            ray.shutdown()
    if vectors is None or sum(per_process.values()) != len(texts):
        raise ClusterError(f"Ray returned {sum(per_process.values())} of {len(texts)} embeddings.")
    report = RayReport(
        address=f"{job.address} ({address})" if job.address == LOCAL else job.address,
        actors=job.actors,
        texts=len(texts),
        texts_per_process=dict(sorted(per_process.items())),
        driver_pid=os.getpid(),
        seconds=round(time.perf_counter() - started_at, 3),
    )
    return vectors, report
