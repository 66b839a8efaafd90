"""The filters of :meth:`rapidmq.Admin.list_audit_events`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Optional

from .config import _merge


@dataclass(frozen=True)
class AuditQuery:
    """Which audit records to list; every filter is optional (``None``: any).

    ``since_ms`` is an inclusive and ``until_ms`` an exclusive bound on the record time (ms since
    the epoch); ``actor`` is ``tenant/user``, ``token:<id>`` or ``anonymous``; ``action_prefix``
    e.g. ``"auth."`` or ``"topic.delete"``; ``outcome`` ``"ok"``, ``"denied"`` or ``"failed"``.
    At most ``limit`` records per page (``None``: 100; the broker caps it at 1000), from
    ``page_token`` (a previous page's ``next_page_token``)."""

    since_ms: Optional[int] = None
    until_ms: Optional[int] = None
    actor: Optional[str] = None
    action_prefix: Optional[str] = None
    outcome: Optional[str] = None
    limit: Optional[int] = None
    page_token: Optional[str] = None


def _audit_filters(query: Optional[AuditQuery], filters: Dict[str, Any]) -> Dict[str, Any]:
    """The native call's keyword arguments: ``query`` with ``filters`` replacing its fields."""
    return dataclasses.asdict(_merge(query, AuditQuery, filters))


__all__ = ["AuditQuery"]
