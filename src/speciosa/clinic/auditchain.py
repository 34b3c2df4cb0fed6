"""The audit trail's hash chain: every entry carries a hash of its content and of the entry
before it, so an entry changed, removed or inserted out of turn is seen by :func:`verify`
(``speciosa audit verify``).

- :func:`append` stores entries at the head of the chain. It runs in one transaction that
  holds the chain head (:class:`~speciosa.clinic.models.AuditChainHead`, one row): on
  PostgreSQL by ``SELECT ... FOR UPDATE`` of that row, on SQLite by the transaction itself
  (the app's transactions begin ``IMMEDIATE``, so one writer at a time holds the database).
  Two app servers appending at once therefore never fork the chain.
- :func:`entry_hash` is SHA-256 over the previous hash and a canonical JSON of the entry's
  content (position, uid, time, user, action, what, patient, before, after, reason). Numbers
  are written so that a JSON value reads back the same from SQLite and from PostgreSQL's
  ``jsonb`` (an integral float is written as an integer).
- :func:`verify` walks the chain in order and reports the first broken entry.

The chain makes the trail tamper-evident, not tamper-proof: someone who can rewrite the
table and the head can rewrite the whole chain. So the head carries an HMAC (:func:`head_mac`)
of its position and hash under a key that lives outside the database
(``SPECIOSA_AUDIT_HMAC_KEY``, by default derived from ``SECRET_KEY``): a chain recomputed by
someone with database access but without the key fails :func:`verify`. The database role of
the application may only insert into and read the audit table (docs/deployment.md), and the
head hash printed by ``speciosa audit verify`` can be kept outside the database too (an older
head, replayed with its old HMAC after entries at the end were removed, is caught that way).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction

GENESIS = "0" * 64
HEAD_ID = 1


def _canonical(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def _when(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds")


def entry_hash(prev: str, *, seq: int, uid, at: dt.datetime, user_id, action: str, model: str,
               object_id, patient_id, before, after, reason: str) -> str:
    """The hash of one entry at position ``seq`` after an entry whose hash is ``prev``."""
    content = {"seq": seq, "prev": prev, "uid": str(uid), "at": _when(at), "user": user_id,
               "action": action, "model": model, "object_id": object_id, "patient": patient_id,
               "before": _canonical(before), "after": _canonical(after), "reason": reason}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _key() -> bytes:
    from django.conf import settings
    from django.utils.crypto import salted_hmac

    explicit = getattr(settings, "AUDIT_HMAC_KEY", "")
    if explicit:
        return explicit.encode("utf-8")
    return salted_hmac("speciosa.clinic.auditchain.head", "audit chain head key").digest()


def _has_mac(head_model) -> bool:
    return any(f.name == "mac" for f in head_model._meta.fields)


def head_mac(seq: int, head_hash: str) -> str:
    """HMAC-SHA256 of the chain head (``seq`` and ``hash``) under the audit HMAC key."""
    return hmac.new(_key(), f"{seq}:{head_hash}".encode("ascii"), hashlib.sha256).hexdigest()


def _hash_of(entry, prev: str) -> str:
    return entry_hash(prev, seq=entry.seq, uid=entry.uid, at=entry.at, user_id=entry.user_id,
                      action=entry.action, model=entry.model, object_id=entry.object_id,
                      patient_id=entry.patient_id, before=entry.before, after=entry.after,
                      reason=entry.reason)


def _locked_head(head_model):
    """The chain head row, held until the transaction ends (made when missing: a database
    emptied by a test's clean-up)."""
    query = head_model.objects.filter(pk=HEAD_ID)
    if connection.features.has_select_for_update:
        query = query.select_for_update()
    head = query.first()
    if head is None:
        head_model.objects.bulk_create(
            [head_model(pk=HEAD_ID, seq=0, hash=GENESIS, mac=head_mac(0, GENESIS))],
            ignore_conflicts=True)
        head = query.get()
    return head


def link(entries: list, head_model) -> None:
    """Give ``entries`` their chain positions and hashes after the held head (in a
    transaction that holds it), and move the head past them."""
    head = _locked_head(head_model)
    seq, prev = head.seq, head.hash
    for entry in entries:
        seq += 1
        entry.seq, entry.prev_hash = seq, prev
        entry.hash = prev = _hash_of(entry, prev)
    head_model.objects.filter(pk=HEAD_ID).update(seq=seq, hash=prev, mac=head_mac(seq, prev))


@dataclass(frozen=True)
class Result:
    """What :func:`verify` found: ``ok``, the number of entries checked, the head's hash,
    and for a broken chain the first broken entry (id, position) and why."""

    ok: bool
    entries: int
    head: str
    broken_id: int | None = None
    broken_seq: int | None = None
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "head": self.head, "broken_id": self.broken_id,
                "broken_seq": self.broken_seq, "reason": self.reason}


#: What loading or hashing an entry raises when a stored value was rewritten into something
#: the application cannot read (SQLite's untyped columns take any text).
_UNREADABLE = (ValueError, TypeError, AttributeError, OverflowError, ValidationError)
_CHUNK = 2000


def _entries(entry_model) -> Iterator[tuple[int, Any]]:
    """``(id, entry)`` in chain order; ``entry`` is None for a row that cannot be read. Ids are
    read first (an integer primary key always reads), then the rows a chunk at a time, and a
    chunk that fails row by row, so one unreadable row is named instead of ending the walk."""
    ids = entry_model.objects.order_by("seq", "pk").values_list("pk", flat=True)
    chunk: list[int] = []
    for pk in [*ids.iterator(chunk_size=_CHUNK), None]:
        if pk is not None:
            chunk.append(pk)
            if len(chunk) < _CHUNK:
                continue
        try:
            loaded = entry_model.objects.in_bulk(chunk)
        except _UNREADABLE:
            loaded = {}
            for one in chunk:
                try:
                    loaded[one] = entry_model.objects.get(pk=one)
                except _UNREADABLE:
                    pass
        yield from ((one, loaded.get(one)) for one in chunk)
        chunk = []


def verify() -> Result:
    """Check the whole chain, in order; stop at the first broken entry (an entry whose stored
    values cannot be read is broken too: it is named, never a crash)."""
    from .models import AuditChainHead, AuditEntry

    unchained = AuditEntry.objects.filter(seq__isnull=True).order_by("id").values_list(
        "pk", flat=True).first()
    if unchained is not None:
        return Result(False, 0, "", unchained, None,
                      "an entry without a chain position (stored around the application)")
    prev, expected, count = GENESIS, 1, 0
    for pk, entry in _entries(AuditEntry):
        seq = getattr(entry, "seq", None)
        try:
            computed = _hash_of(entry, prev) if isinstance(seq, int) else None
        except _UNREADABLE:
            computed = None
        if computed is None:
            return Result(False, count, prev, pk, seq if isinstance(seq, int) else None,
                          "its stored values cannot be read (the entry was changed around the "
                          "application)")
        if seq != expected:
            what = "missing" if seq > expected else "repeated"
            return Result(False, count, prev, pk, seq,
                          f"position {expected} is {what} (an entry was removed or inserted)")
        if entry.prev_hash != prev:
            return Result(False, count, prev, pk, seq,
                          "its link to the previous entry does not match")
        if computed != entry.hash:
            return Result(False, count, prev, pk, seq,
                          "its content does not match its hash (the entry was changed)")
        prev, expected, count = entry.hash, expected + 1, count + 1
    head = AuditChainHead.objects.filter(pk=HEAD_ID).first()
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
    if head_seq != count:
        return Result(False, count, prev, None, head_seq,
                      f"the chain head is at position {head_seq} but the last entry is at {count} "
                      "(entries at the end were removed, or the head was changed)")
    if head_hash != prev:
        return Result(False, count, prev, None, head_seq,
                      f"the hash of the chain head does not match the last entry (position "
                      f"{count}): the head was changed, or the last entry was replaced")
    if head is not None and not hmac.compare_digest(head.mac or "", head_mac(head_seq, head_hash)):
        return Result(False, count, prev, None, head_seq,
                      "the chain head's HMAC does not match (the chain was recomputed by someone "
                      "without the audit key, or SPECIOSA_AUDIT_HMAC_KEY changed)")
    return Result(True, count, prev)


def anchor(head_model=None) -> None:
    """Set the head's HMAC under the current key (migration 0019, for a head stored before
    the HMAC existed)."""
    if head_model is None:
        from .models import AuditChainHead as head_model
    head = head_model.objects.filter(pk=HEAD_ID).first()
    if head is not None:
        head_model.objects.filter(pk=HEAD_ID).update(mac=head_mac(head.seq, head.hash))


def backfill(entry_model, head_model) -> int:
    """Chain entries stored before the chain existed, in id order (a migration, with the
    append-only triggers lifted). Returns the number chained."""
    seq, prev = 0, GENESIS
    with transaction.atomic():
        for entry in entry_model.objects.order_by("id").iterator(chunk_size=2000):
            seq += 1
            entry.seq, entry.prev_hash = seq, prev
            entry.hash = prev = _hash_of(entry, prev)
            entry_model.objects.filter(pk=entry.pk).update(seq=seq, prev_hash=entry.prev_hash,
                                                           hash=entry.hash)
        defaults = {"seq": seq, "hash": prev}
        if _has_mac(head_model):  # the model of migration 0011 predates the HMAC
            defaults["mac"] = head_mac(seq, prev)
        head_model.objects.update_or_create(pk=HEAD_ID, defaults=defaults)
    return seq
