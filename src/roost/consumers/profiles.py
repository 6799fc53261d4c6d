"""Profiles: a consumer of the Log that keeps each user's traits, identities and groups.

- identify merges traits into the user's profile; a trait set to null is removed;
- identify with both anonymousId and userId links them, and so does alias (previousId →
  userId); the linked id's profile, memberships and links move to the user;
- group merges the group's traits and adds the membership (a user may be in many groups);
- activity (first/last seen, event count) is counted in the Warehouse at read time over the
  user's id and every linked id, so an anonymous event counts for the user it is linked to.

Only groups of the Log holding identify, alias or group calls are read (the Log flags them),
so the rest of the traffic costs this consumer nothing. Each batch is applied in one
transaction with the consumer's cursor, so after a crash or a restart it resumes exactly
where it stopped, and `rebuild` replays it from the Log.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec
from sqlalchemy.engine import Connection

from roost.consumers.follower import Follower
from roost.model import Event
from roost.storage.log import Group
from roost.storage.metadata.profiles import Changes, Profile, ProfileStore

NAME = "profiles"


class Source(Protocol):
    def last_offset(self) -> int: ...
    def read_groups(
        self, after_offset: int, limit: int, identities_only: bool = False
    ) -> list[Group]: ...


class Seen(msgspec.Struct):
    """The fields of an Event that profiles use; decoding only these skips the rest cheaply."""

    project_id: int
    type: str
    user_id: str | None = None
    anonymous_id: str | None = None
    previous_id: str | None = None
    group_id: str | None = None
    traits: dict[str, Any] = msgspec.field(default_factory=dict)
    context: dict[str, Any] = msgspec.field(default_factory=dict)


_decode_group = msgspec.json.Decoder(list[Seen]).decode


def merge_traits(into: dict[str, Any], traits: dict[str, Any]) -> dict[str, Any]:
    merged = dict(into)
    for key, value in traits.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


class Applier:
    """One batch's view of the store: reads through what the batch already changed."""

    def __init__(self, conn: Connection, store: ProfileStore) -> None:
        self.conn = conn
        self.store = store
        self.changes = Changes()

    def profile(self, project: int, user: str, create: bool = True) -> Profile | None:
        key = (project, user)
        if key in self.changes.profiles:
            found = self.changes.profiles[key]
            if found is not None or not create:
                return found
        else:
            found = self.store.profile(self.conn, project, user)
        if found is None and create:
            found = Profile()
        if found is not None:
            self.changes.profiles[key] = found
        return found

    def resolve(self, project: int, alias: str) -> str | None:
        if (project, alias) in self.changes.identities:
            return self.changes.identities[(project, alias)]
        return self.store.resolve(self.conn, project, alias)

    def groups_of(self, project: int, user: str) -> set[str]:
        groups = set(self.store.groups_of(self.conn, project, user))
        groups |= {g for p, u, g in self.changes.joined if (p, u) == (project, user)}
        return groups - {g for p, u, g in self.changes.left if (p, u) == (project, user)}

    def link(self, project: int, alias: str, user: str) -> None:
        """`alias` (an anonymous or earlier id) is `user` from now on; move what it had."""
        if alias == user or self.resolve(project, alias) == user:
            return
        self.changes.identities[(project, alias)] = user
        for earlier in self.store.aliases_of(self.conn, project, alias):
            self.changes.identities[(project, earlier)] = user
        for (p, a), u in list(self.changes.identities.items()):
            if p == project and u == alias:
                self.changes.identities[(p, a)] = user
        old = self.profile(project, alias, create=False)
        if old is not None:
            new = self.profile(project, user)
            assert new is not None
            new.traits = {**old.traits, **new.traits}
            self.changes.profiles[(project, alias)] = None
        for group in self.groups_of(project, alias):
            self.changes.left.add((project, alias, group))
            self.changes.joined.add((project, user, group))

    def event(self, e: Seen | Event) -> None:
        project = e.project_id
        if e.type == "identify" and e.user_id and e.anonymous_id:
            self.link(project, e.anonymous_id, e.user_id)
        elif e.type == "alias" and e.user_id and e.previous_id:
            self.link(project, e.previous_id, e.user_id)
        if e.type not in ("identify", "group"):
            return
        user = (
            e.user_id
            or (e.anonymous_id and self.resolve(project, e.anonymous_id))
            or e.anonymous_id
        )
        if not user:
            return
        profile = self.profile(project, user)
        assert profile is not None
        if e.type == "identify" and e.traits:
            profile.traits = merge_traits(profile.traits, e.traits)
        once = e.context.get("$set_once") if e.type == "identify" else None
        if isinstance(once, dict):  # PostHog's $set_once: only where the profile has none
            fresh = {k: v for k, v in once.items() if v is not None and k not in profile.traits}
            if fresh:
                profile.traits = {**profile.traits, **fresh}
        if e.type == "group" and e.group_id:
            key = (project, e.group_id)
            if key not in self.changes.groups:
                self.changes.groups[key] = self.store.group(self.conn, project, e.group_id) or {}
            self.changes.groups[key] = merge_traits(self.changes.groups[key], e.traits)
            self.changes.joined.add((project, user, e.group_id))
            self.changes.left.discard((project, user, e.group_id))


class ProfilesConsumer(Follower):
    name = "roost-profiles"

    def __init__(
        self,
        source: Source,
        store: ProfileStore,
        *,
        batch_events: int = 20000,
        interval: float = 1.0,
    ) -> None:
        super().__init__(interval)
        self.source = source
        self.store = store
        self.batch_events = batch_events
        self.offset = store.cursor(NAME)
        self.identities_version = 1  # bumped whenever links change; 1: copy them once at start
        self._lock = threading.Lock()  # one batch at a time, from the thread or catch_up

    def position(self) -> int:
        return self.offset

    def step(self) -> None:
        self.catch_up()

    def finish(self) -> None:
        self.catch_up()

    def apply(self, groups: Sequence[Group], up_to: int) -> None:
        """Apply the events after the cursor up to `up_to`, and move the cursor there, at once."""
        if up_to <= self.offset:
            return
        with self.store.engine.begin() as conn:
            applier = Applier(conn, self.store)
            for first, _, blob in groups:
                for i, seen in enumerate(_decode_group(blob)):
                    if self.offset < first + i <= up_to:
                        applier.event(seen)
            self.store.apply(conn, NAME, up_to, applier.changes)
        if applier.changes.identities:
            self.identities_version += 1
        self.offset = up_to

    def catch_up(self) -> int:
        """Apply everything the Log holds beyond the cursor, on the calling thread."""
        before = self.offset
        with self._lock:
            while self.offset < (target := self.source.last_offset()):
                groups = self.source.read_groups(
                    self.offset, self.batch_events, identities_only=True
                )
                groups = [g for g in groups if g[0] <= target]
                seen = sum(min(f + n - 1, target) - max(f - 1, self.offset) for f, n, _ in groups)
                full = seen >= self.batch_events  # more may follow before the target
                self.apply(groups, up_to=groups[-1][0] + groups[-1][1] - 1 if full else target)
        return self.offset - before

    def erase(self, project_id: int, user_id: str) -> list[str]:
        """Forget a user between two batches (storage/metadata/profiles.py); the ids it had."""
        with self._lock:
            ids = self.store.erase(project_id, user_id)
            self.identities_version += 1  # the Warehouse's copy of the links follows
        return ids

    def rebuild(self) -> int:
        """Forget every profile and apply the Log again from its start."""
        with self._lock:
            self.store.reset(NAME)
            self.offset = 0
            self.identities_version += 1
        return self.catch_up()
