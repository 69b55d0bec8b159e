"""What the discovery page reads: the sources (discovery API feeds, inventory-agent sites, nmap
scans) with what they saw and their last run, the runs, the conflicts waiting for a person and the
devices a scan found that the CMDB does not know.

Conflicts and unmanaged hosts come from each source's latest run (a later run supersedes an
earlier one's findings) and are checked against the CIs as they are now, by id: a conflict settled
by an edit, or a host added to the CMDB, leaves the list without waiting for the next run. Runs are
read without their payload; a run's results are only loaded for the runs a list needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select

from cairn.auth.models import User
from cairn.db import db, id_in, utcnow
from cmdb.models import ConfigurationItem
from integrations.agents.models import AgentDevice, AgentToken
from integrations.sync.models import CISourceSeen, SyncJob

RUN_KINDS = ("discovery", "nmap")
AGENT_PREFIX = "agents:"
SHOWN = 200  # conflicts and unmanaged hosts listed on the page
WINDOW_DAYS = 30
WINDOW_RUNS = 500


@dataclass
class Source:
    name: str
    kind: str  # "agents", "nmap" or "api"
    site: str = ""
    cis_seen: int = 0
    last_seen_at: datetime | None = None
    runs: int = 0
    last_run: dict | None = None
    tokens: int = 0
    devices: int = 0

    @property
    def last_activity(self) -> datetime | None:
        times = [t for t in (self.last_seen_at, (self.last_run or {}).get("started_at")) if t]
        return max(times) if times else None


@dataclass
class Conflict:
    kind: str  # "ambiguous" (one item, several CIs) or "held" (a manual edit holds a value back)
    run_id: int
    source: str
    index: int
    at: datetime | None
    ci: ConfigurationItem | None = None
    candidates: list[ConfigurationItem] = field(default_factory=list)
    item: dict = field(default_factory=dict)
    rule: str = ""
    held: list[tuple[str, object, object]] = field(default_factory=list)  # (field, discovered, current)


def kind_of(source: str) -> str:
    if source.startswith(AGENT_PREFIX):
        return "agents"
    return "nmap" if source == "nmap" else "api"


RUN_COLUMNS = (
    SyncJob.id,
    SyncJob.kind,
    SyncJob.source,
    SyncJob.status,
    SyncJob.actor,
    SyncJob.counts,
    SyncJob.error,
    SyncJob.started_at,
    SyncJob.finished_at,
    SyncJob.created_at,
)


def _run_rows(stmt) -> list[dict]:
    return [dict(row._mapping) for row in db.session.execute(stmt)]


def sources() -> list[Source]:
    """Every source that ran or saw a CI, and every agent site with a token, most recent first."""
    found: dict[str, Source] = {}

    def source(name: str) -> Source:
        if name not in found:
            kind = kind_of(name)
            found[name] = Source(name, kind, site=name[len(AGENT_PREFIX) :] if kind == "agents" else "")
        return found[name]

    seen = select(CISourceSeen.source, func.count(), func.max(CISourceSeen.last_seen_at)).group_by(CISourceSeen.source)
    for name, count, last in db.session.execute(seen):
        entry = source(name)
        entry.cis_seen, entry.last_seen_at = count, last
    runs = (
        select(SyncJob.source, func.count(), func.max(SyncJob.id))
        .where(SyncJob.kind.in_(RUN_KINDS), SyncJob.dry_run.is_(False))
        .group_by(SyncJob.source)
    )
    latest: dict[int, str] = {}
    for name, count, last_id in db.session.execute(runs):
        source(name).runs = count
        latest[last_id] = name
    if latest:
        for row in _run_rows(select(*RUN_COLUMNS).where(id_in(SyncJob.id, list(latest)))):
            found[latest[row["id"]]].last_run = row
    tokens = select(AgentToken.site, func.count()).where(AgentToken.revoked_at.is_(None)).group_by(AgentToken.site)
    for site, count in db.session.execute(tokens):
        source(AGENT_PREFIX + site).tokens = count
    for site, count in db.session.execute(select(AgentDevice.site, func.count()).group_by(AgentDevice.site)):
        source(AGENT_PREFIX + site).devices = count
    never = datetime.min
    return sorted(found.values(), key=lambda s: (s.last_activity or never, s.name), reverse=True)


def runs(source: str = "", kind: str = "", page: int = 1, per_page: int = 50) -> tuple[list[dict], bool]:
    """One page of discovery runs and nmap scans, newest first (dry runs included and marked as
    such by their actor's columns); and whether there is a next page."""
    stmt = select(*RUN_COLUMNS, SyncJob.dry_run).where(SyncJob.kind.in_(RUN_KINDS))
    if source:
        stmt = stmt.where(SyncJob.source == source)
    if kind in RUN_KINDS:
        stmt = stmt.where(SyncJob.kind == kind)
    rows = _run_rows(stmt.order_by(SyncJob.id.desc()).limit(per_page + 1).offset((page - 1) * per_page))
    return rows[:per_page], len(rows) > per_page


def runs_since(hours: int = 24) -> int:
    since = utcnow() - timedelta(hours=hours)
    stmt = select(func.count()).where(SyncJob.kind.in_(RUN_KINDS), SyncJob.created_at >= since)
    return db.session.scalar(stmt) or 0


def _recent_runs(kind: str) -> list[SyncJob]:
    """The finished runs of ``kind`` (dry runs aside) of the last ``WINDOW_DAYS``, newest first, at
    most ``WINDOW_RUNS`` of them: where conflicts and unmanaged hosts are looked for (an agent's
    inventory is a run of one device, so a site's latest run alone would show one device only)."""
    since = utcnow() - timedelta(days=WINDOW_DAYS)
    stmt = (
        select(SyncJob)
        .where(SyncJob.kind == kind, SyncJob.dry_run.is_(False), SyncJob.status == "done", SyncJob.created_at >= since)
        .order_by(SyncJob.id.desc())
        .limit(WINDOW_RUNS)
    )
    return list(db.session.scalars(stmt))


def _cis(ids) -> dict[int, ConfigurationItem]:
    ids = sorted(set(ids))
    if not ids:
        return {}
    return {ci.id: ci for ci in db.session.scalars(select(ConfigurationItem).where(id_in(ConfigurationItem.id, ids)))}


def _last_seen(pairs: set[tuple[str, int]]) -> dict[tuple[str, int], datetime]:
    ids = sorted({ci_id for _, ci_id in pairs})
    if not ids:
        return {}
    stmt = select(CISourceSeen.source, CISourceSeen.ci_id, CISourceSeen.last_seen_at).where(
        id_in(CISourceSeen.ci_id, ids)
    )
    return {(source, ci_id): at for source, ci_id, at in db.session.execute(stmt) if (source, ci_id) in pairs}


def conflicts(limit: int = SHOWN) -> tuple[list[Conflict], int]:
    """What waits for a person: items that matched several CIs (the duplicates to merge or tell
    apart) and discovered values a manual edit holds back (to accept, or to leave as typed), each
    from the latest run that reported it, minus those settled since; up to ``limit`` of them and
    how many there are."""
    found: list[tuple[SyncJob, dict]] = []
    taken: set[tuple] = set()
    for job in _recent_runs("discovery"):
        for result in job.results or []:
            if result.get("status") == "ambiguous":
                item = result.get("item") or {}
                key = (job.source, "item", item.get("device_id") or tuple(result.get("matches") or ()))
            elif result.get("held") and result.get("ci_id"):
                key = (job.source, "ci", result["ci_id"])
            else:
                continue
            if key not in taken:
                taken.add(key)
                found.append((job, result))
    cis = _cis(i for _, r in found for i in (r.get("matches") or [r.get("ci_id")]) if i)
    seen = _last_seen({(job.source, r["ci_id"]) for job, r in found if r.get("held")})
    open_ones: list[Conflict] = []
    for job, result in found:
        at = job.finished_at or job.created_at
        if result.get("status") == "ambiguous":
            candidates = [cis[i] for i in result.get("matches") or [] if i in cis]
            if len(candidates) > 1:
                open_ones.append(
                    Conflict("ambiguous", job.id, job.source, result["index"], at, candidates=candidates,
                             item=result.get("item") or {}, rule=result.get("rule", ""))
                )  # fmt: skip
            continue
        ci = cis.get(result["ci_id"])
        last_seen = seen.get((job.source, result["ci_id"]))
        if ci is None or (last_seen is not None and job.finished_at and last_seen > job.finished_at):
            continue  # gone, or a later run saw the CI and held nothing back
        held = [(name, value, _value(ci, name)) for name, value in sorted(result["held"].items())]
        held = [h for h in held if h[1] != h[2]]
        if held:
            open_ones.append(Conflict("held", job.id, job.source, result["index"], at, ci=ci, held=held))
    return open_ones[:limit], len(open_ones)


def _value(ci: ConfigurationItem, name: str):
    if name.startswith("attributes."):
        return (ci.attributes or {}).get(name[len("attributes.") :])
    return getattr(ci, name, None)


def unmanaged(limit: int = SHOWN) -> tuple[list[dict], int]:
    """Hosts that the latest scan to report them found up and matched to no CI (and that were not
    added since), with the scan's findings; up to ``limit`` of them and how many there are."""
    hosts: list[dict] = []
    taken: set = set()
    for job in _recent_runs("nmap"):
        at = job.finished_at or job.created_at
        for result in job.results or []:
            key = (
                result.get("mac_address")
                or tuple(result.get("ip_addresses") or ())
                or tuple(result.get("hostnames") or ())
            )
            if key in taken:
                continue
            taken.add(key)
            if result.get("status") == "unmanaged":
                hosts.append({**result, "run_id": job.id, "at": at})
    return hosts[:limit], len(hosts)


def run_results(job: SyncJob, status: str = "", page: int = 1, per_page: int = 50) -> tuple[list[dict], bool, dict]:
    """One page of a run's item results (of one ``status``, or ``held``), their CIs by id, and
    whether there is a next page."""
    results = job.results or []
    if status == "held":
        results = [r for r in results if r.get("held")]
    elif status:
        results = [r for r in results if r.get("status") == status]
    shown = results[(page - 1) * per_page : page * per_page]
    cis = _cis(i for r in shown for i in (*(r.get("matches") or []), r.get("ci_id")) if i)
    return shown, len(results) > page * per_page, cis


def devices(site: str = "", page: int = 1, per_page: int = 50) -> tuple[list[AgentDevice], bool, dict, dict]:
    """One page of the devices the inventory agents reported, latest inventory first; whether there
    is a next page; their CIs and proposed assignees by id."""
    stmt = select(AgentDevice).order_by(AgentDevice.last_inventory_at.desc(), AgentDevice.id.desc())
    if site:
        stmt = stmt.where(AgentDevice.site == site)
    rows = list(db.session.scalars(stmt.limit(per_page + 1).offset((page - 1) * per_page)))
    more, rows = len(rows) > per_page, rows[:per_page]
    user_ids = sorted({d.proposed_assignee_id for d in rows if d.proposed_assignee_id})
    users = {u.id: u for u in db.session.scalars(select(User).where(id_in(User.id, user_ids)))} if user_ids else {}
    return rows, more, _cis(d.ci_id for d in rows if d.ci_id), users
