"""The clients every service needs, built once at the edge from Settings."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import boto3
import redis

from chalicelib.settings import Settings, load_settings
from chalicelib.state.blobstamps import BlobStamps
from chalicelib.state.hooks import Deliveries, DeployHooks
from chalicelib.state.limits import Limits
from chalicelib.state.logs import BuildLog
from chalicelib.state.memo import BuildMemo, SourceMemo
from chalicelib.state.packindex import PackIndex
from chalicelib.state.projects import Projects
from chalicelib.state.queue import SOURCES, JobQueue
from chalicelib.state.records import Records
from chalicelib.state.secrets import EnvBox
from chalicelib.state.tokens import Tokens
from chalicelib.state.uploads import Uploads
from chalicelib.storage.store import Store, make_s3_client


@dataclass
class Context:
    settings: Settings
    redis: redis.Redis
    store: Store

    @cached_property
    def records(self) -> Records:
        return Records(self.redis)

    @cached_property
    def queue(self) -> JobQueue:
        return JobQueue(self.redis, self.settings.job_lease_seconds)

    @cached_property
    def source_queue(self) -> JobQueue:
        """Clones and source uploads waiting for a source worker (pipeline/sources.py)."""
        return JobQueue(self.redis, self.settings.job_lease_seconds, SOURCES)

    @cached_property
    def env_box(self) -> EnvBox:
        return EnvBox(self.settings.percel_secret_key)

    @cached_property
    def logs(self) -> BuildLog:
        return BuildLog(self.redis)

    @cached_property
    def tokens(self) -> Tokens:
        return Tokens(self.redis)

    @cached_property
    def projects(self) -> Projects:
        return Projects(self.redis, self.env_box)

    @cached_property
    def memo(self) -> BuildMemo:
        return BuildMemo(self.redis, self.settings.memo_seconds)

    @cached_property
    def source_memo(self) -> SourceMemo:
        return SourceMemo(self.redis, self.settings.memo_seconds)

    @cached_property
    def lambda_client(self) -> Any:
        """The Lambda client that starts the source function (SOURCE_FUNCTION), made on first use."""
        return boto3.client("lambda", region_name=self.settings.aws_region)

    @cached_property
    def limits(self) -> Limits:
        return Limits(self.redis)

    @cached_property
    def clone_slots(self) -> threading.BoundedSemaphore:
        """The clones this process may run at once (MAX_CONCURRENT_CLONES)."""
        return threading.BoundedSemaphore(self.settings.max_concurrent_clones)

    @cached_property
    def hooks(self) -> DeployHooks:
        return DeployHooks(self.redis)

    @cached_property
    def deliveries(self) -> Deliveries:
        return Deliveries(self.redis)

    @cached_property
    def uploads(self) -> Uploads:
        return Uploads(self.redis)


def build_context(settings: Settings | None = None) -> Context:
    settings = settings or load_settings()
    # Short socket timeouts: a health check or API call must answer, not hang, when Redis is down.
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=10, socket_connect_timeout=3,
                                  health_check_interval=30)
    refresh_after = settings.gc_grace_seconds / 2
    store = Store(make_s3_client(settings), settings.bucket, settings.upload_workers,
                  refresh_after=refresh_after, stamps=BlobStamps(client, refresh_after),
                  packed=PackIndex(client))
    return Context(settings, client, store)
