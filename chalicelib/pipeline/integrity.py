"""Whether the bucket still holds what the records say is deployed.

Records live in Redis and files in the bucket. A bucket emptied or replaced under a kept Redis
(an embedded S3 server restarted without its recording, a changed PERCEL_BUCKET or endpoint)
leaves records that say `deployed` for sites whose output manifest is gone. The health check and
the local stack's start look for that, so it is reported as what it is instead of as 404s.
"""
from __future__ import annotations

from chalicelib import keys
from chalicelib.context import Context
from chalicelib.state.records import State

# Records the health check reads (newest first) looking for deployed ones, and how many of
# those it checks in the bucket: one HEAD per health call in the usual case.
HEALTH_RECORDS = 20
HEALTH_CHECKS = 1


def missing_outputs(ctx: Context, records: int, checks: int | None = None) -> tuple[list[str], int]:
    """Among the newest `records` deployments, the deployed ones (the newest `checks` of them,
    all when None) whose output manifest the bucket lacks; returns (those ids, how many were
    checked)."""
    deployed = [record["id"] for record in ctx.records.newest(records)
                if record.get("status") == State.DEPLOYED.value][:checks]
    missing = [d for d in deployed if not ctx.store.exists(keys.deployment_manifest(d))]
    return missing, len(deployed)


def lost_outputs_message(missing: list[str], checked: int) -> str:
    """What to tell an operator when deployed deployments have no files; "" when none."""
    if not missing:
        return ""
    return (f"{len(missing)} of {checked} deployed deployments checked have no files in the "
            f"bucket (first: {missing[0]}): the bucket was emptied or replaced while Redis "
            "kept their records, so their sites answer 503")
