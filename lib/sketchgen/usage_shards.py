"""A user's usage in shards: no hot document, however busy the user (docs/decisions/0051).

One usage document per user took every reservation and settlement of that user: five jobs
submitted at once were five writes in a second on one document (Firestore sustains about
one). The usage is now :data:`USAGE_SHARDS` documents; ``usage/{uid}`` itself is shard 0 (a
document written before the change is read as it was) and ``usage/{uid}/shards/{i}`` the
others. What the user sees (``/v1/usage``, the refusals) is the sum (:func:`combine`), and
every rule of :mod:`sketchgen.spend` is still decided on that sum, so the answers are the
one-document ledger's.

Exact limits without reading the shards under one lock. Each shard holds a fixed part of the
user's limits (:func:`split`: the day's images and the active-job slots, the parts summing
to the limit), and a write that adds usage to a shard must stay within that shard's part,
checked under the shard's own precondition: whatever other writers do to other shards at the
same moment, the sum cannot pass the limit. Where the images a job needs are left in the day
but in no single shard (fragments), room is *lent*: the write moves part of other shards'
image allowance into the chosen one (``lent``, summing to 0 over the day's shards), in one
atomic commit of every shard it changes. So a reservation is refused exactly when the
one-document ledger would refuse it, and never passes the limit. Active-job slots are one
each: when the sum has a free slot some shard has one (the parts sum to the limit), so
slots are never lent.

Where each write goes (:func:`plan_writes`): a new job to a random shard with a free slot
(and, first choice, the images it needs); a settlement or an extra call to the shard holding
the job; describer/embedder calls and reference uploads to shard 0 (uploads have their own
daily limit, kept whole there). A burst of ``A`` submissions (``A`` ≤ the active-job limit)
puts at most ``ceil(A / USAGE_SHARDS)`` writes on a shard, and each job writes its shard
twice in its life (reserved, settled).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from sketchgen.spend import Limits, UsageDoc

__all__ = [
    "HOME_SHARD",
    "USAGE_SHARDS",
    "UsageShard",
    "combine",
    "plan_writes",
    "split",
]

T = TypeVar("T")
USAGE_SHARDS = 4
HOME_SHARD = 0  # usage/{uid} itself: model calls and uploads are counted here
_EPSILON = 1e-9


class UsageShard(BaseModel):
    """One shard: its part of the user's usage, and the images lent to it (``+``) or by it
    (``-``) on ``usage.day``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    usage: UsageDoc = UsageDoc()
    lent: int = 0

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> UsageShard | None:
        if doc is None:
            return None
        fields = {k: v for k, v in doc.items() if k != "lent"}
        return cls(usage=UsageDoc.from_doc(fields), lent=int(doc.get("lent", 0)))

    def to_doc(self) -> dict[str, Any]:
        return {**self.usage.to_doc(), "lent": self.lent}

    def on(self, day: str) -> UsageShard:
        """As of ``day``: a new day starts with nothing used and nothing lent."""
        if self.usage.day == day:
            return self
        return UsageShard(usage=self.usage.on(day))


def split(total: int, shards: int) -> list[int]:
    """``total`` in ``shards`` whole parts that sum to it (the first ones one larger)."""
    base, extra = divmod(max(0, total), shards)
    return [base + (1 if i < extra else 0) for i in range(shards)]


def combine(shards: Sequence[UsageShard | None]) -> UsageDoc:
    """The user's usage: the latest day's counters summed over the shards on that day, and
    every shard's unsettled jobs."""
    present = [s.usage for s in shards if s is not None]
    if not present:
        return UsageDoc()
    day = max(u.day for u in present)
    today = [u for u in present if u.day == day]
    jobs = {j: c for u in present for j, c in u.jobs.items()}
    calls: dict[str, int] = {}
    for u in today:
        for kind, n in u.calls.items():
            calls[kind] = calls.get(kind, 0) + n
    return UsageDoc(
        day=day,
        images_used=sum(u.images_used for u in today),
        cost_usd=round(sum(u.cost_usd for u in today), 6),
        jobs=dict(sorted(jobs.items())),
        calls={k: n for k, n in sorted(calls.items()) if n},
        calls_cost_usd=round(sum(u.calls_cost_usd for u in today), 6),
        references_added=sum(u.references_added for u in today),
    )


def plan_writes(
    shards: Sequence[UsageShard | None],
    changed: UsageDoc,
    limits: Limits | None,
    rng: random.Random,
    avoid: frozenset[int] = frozenset(),
) -> dict[int, UsageShard] | None:
    """The shard documents to write so that their sum becomes ``changed`` (what a rule of
    :mod:`sketchgen.spend` made of :func:`combine` of ``shards``), each within its part of
    ``limits``. None when no shard can take it as read (a race: read again).

    A new job goes to another shard than those in ``avoid`` where one can take it: the
    shards a lost race just wrote (each write, even a failed one, counts against a
    document's rate)."""
    n = len(shards)
    day = changed.day
    views = [(s or UsageShard()).on(day) for s in shards]
    before = combine(shards).on(day)
    holder = {j: i for i, v in enumerate(views) for j in v.usage.jobs}
    removed = [j for j in before.jobs if j not in changed.jobs]
    modified = [j for j, c in changed.jobs.items() if j in before.jobs and before.jobs[j] != c]
    added = {j: c for j, c in changed.jobs.items() if j not in before.jobs}
    d_images = changed.images_used - before.images_used
    d_calls = {
        k: changed.calls.get(k, 0) - before.calls.get(k, 0)
        for k in set(changed.calls) | set(before.calls)
    }
    d_calls_cost = changed.calls_cost_usd - before.calls_cost_usd
    d_refs = changed.references_added - before.references_added
    active_added = sum(1 for c in added.values() if c.counts_active)
    if limits is None and (d_images > 0 or active_added):
        raise ValueError("usage that grows needs the limits it is held to")
    images_cap = split(limits.daily_images, n) if limits else [0] * n
    slots = split(limits.active_jobs, n) if limits else [0] * n

    def room(i: int) -> int:
        return images_cap[i] + views[i].lent - views[i].usage.images_used

    touched = sorted({holder[j] for j in [*removed, *modified]})
    if any(d_calls.values()) or d_refs or abs(d_calls_cost) > _EPSILON:
        target = HOME_SHARD
    elif touched and not added:
        target = touched[0]  # the job's own shard: its settlement, its extra call
    else:
        candidates = [
            i
            for i in range(n)
            if not active_added or len(views[i].usage.active_job_ids) + active_added <= slots[i]
        ]
        if not candidates:
            return None
        rng.shuffle(candidates)
        candidates = [i for i in candidates if i not in avoid] or candidates
        fitting = [i for i in candidates if d_images <= 0 or room(i) >= d_images]
        target = (fitting or candidates)[0]

    writes: dict[int, UsageShard] = {}
    for i in {*touched, target}:
        usage = views[i].usage
        jobs = {j: c for j, c in usage.jobs.items() if not (j in removed and holder[j] == i)}
        jobs.update({j: changed.jobs[j] for j in modified if holder[j] == i})
        update: dict[str, Any] = {"jobs": jobs}
        if i == target:
            jobs.update(added)
            calls = {k: usage.calls.get(k, 0) + d_calls.get(k, 0) for k in {*usage.calls, *d_calls}}
            update.update(
                images_used=usage.images_used + d_images,
                cost_usd=round(usage.cost_usd + changed.cost_usd - before.cost_usd, 6),
                calls={k: v for k, v in sorted(calls.items()) if v},
                calls_cost_usd=round(usage.calls_cost_usd + d_calls_cost, 6),
                references_added=usage.references_added + d_refs,
            )
        writes[i] = UsageShard(usage=usage.model_copy(update=update), lent=views[i].lent)

    short = d_images - max(0, room(target)) if d_images > 0 else 0
    if short > 0:  # lend the target the rest from shards with room left
        donors = [i for i in range(n) if i != target and room(i) > 0]
        rng.shuffle(donors)
        for i in donors:
            take = min(room(i), short)
            donor = writes.get(i, views[i])
            writes[i] = donor.model_copy(update={"lent": donor.lent - take})
            writes[target] = writes[target].model_copy(update={"lent": writes[target].lent + take})
            short -= take
            if short == 0:
                break
        if short > 0:
            return None
    return writes
