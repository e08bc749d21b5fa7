"""The delivery jobs: `forward STORE` (deliver what is queued, or --resend) and `trace UID`
(one study's chain of custody)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from qrtui import clock
from qrtui.cli.progress import StderrProgress, ignore
from qrtui.config import Config, ConfigError
from qrtui.query import QueryError, parse_date
from qrtui.status import EXIT_BUSY, EXIT_OK, EXIT_PARTIAL, EXIT_UNREACHABLE, EXIT_USAGE


def say(line: str) -> None:
    print(f"qrtui: {line}", file=sys.stderr, flush=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def forward_job(config: Config, args: argparse.Namespace) -> int:
    from qrtui.forward import deliver
    from qrtui.store import Store, StoreBusy, StoreError
    from qrtui.worker.delivering import delivery_status

    try:
        node = config.store(args.forward)
        if node.directory is None:
            raise ConfigError(f"store {node.name} is external: only an embedded store forwards")
        targets = tuple(args.destinations or ())
        for name in targets:
            config.destination(name)
        first = parse_date(args.date_from, clock.today()) if args.date_from else None
        last = parse_date(args.date_until, clock.today()) if args.date_until else None
        if args.resend and not (args.only_studies or first or last):
            raise QueryError("--resend needs --only-study UID or study dates -f/-t")
        if not args.resend and (args.only_studies or first or last):
            raise QueryError("--only-study and -f/-t choose what --resend queues again")
        resend_to = targets or node.forward
        if args.resend and not resend_to:
            raise ConfigError(f"store {node.name} has no forward list: name one with --to")
    except (ConfigError, QueryError) as exc:
        print(f"qrtui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    signal.signal(signal.SIGTERM, _interrupt)
    progress = StderrProgress() if sys.stderr.isatty() else None
    cancel = threading.Event()
    try:
        with Store(node.directory, wait=args.wait or 0.0, on_wait=say) as store:
            store.forward_to = node.forward
            if args.resend:
                studies = set(args.only_studies or ())
                if first or last:
                    from qrtui.summary import study_doses

                    studies |= {s.study_uid for s in study_doses(store, first, last)}
                count = store.ledger.resend(resend_to, sorted(studies))
                print(
                    f"qrtui: queued again: {count} objects of {len(studies)} studies for "
                    f"{', '.join(resend_to)}",
                    file=sys.stderr,
                )
            try:
                report = deliver(
                    config, store, emit=progress or ignore, cancel=cancel, only=targets or None
                )
            except KeyboardInterrupt:
                cancel.set()
                raise
    except StoreBusy as exc:
        print(f"qrtui: skipped: {exc}; the next run catches up", file=sys.stderr)
        return EXIT_BUSY
    except StoreError as exc:
        print(f"qrtui: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    if progress:
        progress.clear()
    status = delivery_status(report)
    if status:
        print(f"qrtui: {report.message()}", file=sys.stderr)
    if args.json:
        document = {"store": node.name, "forward": report.to_json(), "exit_status": status}
        json.dump(document, sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif report.destinations:
        print("\n".join(d.line() for d in report.destinations))
    else:
        print(f"nothing queued in store {node.name}")
    return status


def trace_job(config: Config, study_uid: str, *, as_json: bool) -> int:
    """What every embedded store's index knows of the study, read without locking."""
    from qrtui.store import INDEX_NAME, Store, StoreError

    found: list[dict[str, Any]] = []
    for node in config.stores:
        if node.directory is None or not (node.directory / INDEX_NAME).exists():
            continue
        try:
            with Store(node.directory, lock=False) as store:
                chain = _chain(store, study_uid)
        except StoreError as exc:
            print(f"qrtui: {exc}", file=sys.stderr)
            continue
        if chain["runs"] or chain["arrived"] or chain["deliveries"]:
            found.append({"store": node.name, **chain})
    if as_json:
        json.dump({"study_instance_uid": study_uid, "stores": found}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for chain in found:
            print("\n".join(trace_lines(study_uid, chain)))
    if not found:
        print(f"qrtui: study {study_uid} is in no embedded store's index", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def _chain(store: Any, study_uid: str) -> dict[str, Any]:
    from pydicom.uid import UID

    def sop_class_name(uid: str) -> str:
        return str(UID(uid).name)

    runs = [
        {"run_id": run_id, "started": started, **entry}
        for run_id, started, entry in store.history.plans_of(study_uid)
    ]
    arrived = [
        {"sop_instance_uid": sop, "sop_class": sop_class_name(cls), "series_uid": series,
         "kind": kind, "bytes": size, "received_at": when, "from_aet": aet}
        for sop, cls, series, kind, size, when, aet in store.ledger.arrivals(study_uid)
    ]  # fmt: skip
    deliveries = [
        {"destination": d.destination, "sop_instance_uid": d.sop_instance_uid,
         "state": d.state, "attempts": d.attempts, "status": d.status, "reason": d.reason,
         "queued_at": d.queued_at, "sent_at": d.sent_at}
        for d in store.ledger.of_study(study_uid)
    ]  # fmt: skip
    dose = [json.loads(summary) for summary in store.doses.of_study(study_uid)]
    return {"runs": runs, "arrived": arrived, "dose": dose, "headline": _headline(dose),
            "deliveries": deliveries}  # fmt: skip


def trace_lines(study_uid: str, chain: dict[str, Any]) -> list[str]:
    lines = [f"study {study_uid} in store {chain['store']}"]
    for run in chain["runs"]:
        listed = run.get("series_listed", [])
        lines.append(
            f"  listed  run #{run['run_id']} {run['started']}: {run.get('study_date', '')} "
            f"{run.get('description', '')!r}, {len(listed)} series"
        )
        for series in listed:
            count = series.get("instances")
            lines.append(
                f"            series {series['series_uid']} {series.get('modality', '')} "
                f"{series.get('description') or ''!r}"
                + (f", {count} objects" if count is not None else "")
            )
        lines.append(f"  chosen  {run['decision']}: {run['reason']}")
        for pick in run.get("picks", []):
            lines.append(f"            {pick['series_uid']}: {pick['instances']} ({pick['why']})")
        if run.get("outcome"):
            lines.append(f"  outcome {run['outcome']}")
    for item in chain["arrived"]:
        lines.append(
            f"  arrived {item['received_at']} {item['sop_instance_uid']} {item['sop_class']} "
            f"({item['kind'] or 'object'}, {item['bytes']} B, from {item['from_aet']})"
        )
    if chain["dose"]:
        lines.append(f"  dose    {chain['headline']}")
    for d in chain["deliveries"]:
        when = d["sent_at"] or d["queued_at"]
        why = f" ({d['reason']})" if d["reason"] else ""
        lines.append(
            f"  -> {d['destination']}: {d['state']} {when} {d['sop_instance_uid']}"
            f" after {d['attempts']} attempt{'' if d['attempts'] == 1 else 's'}{why}"
        )
    if not chain["deliveries"]:
        lines.append("  delivered nowhere (no destination queued)")
    return lines


def _headline(dose: list[dict[str, Any]]) -> str:
    from qrtui.dose import DoseSummary, StudyDose, headline

    try:
        return headline(StudyDose("", [DoseSummary.from_json(d) for d in dose]))
    except (KeyError, TypeError, ValueError, AttributeError):
        return "unreadable"
