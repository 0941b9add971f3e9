"""Per-stage results: one row per (workflow, stage, image, seq) with status, reason and the image's properties
as they leave that stage. Downstream stages and Save read these in bulk."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

KEPT, REJECTED, ABSENT, ERROR = "kept", "rejected", "absent", "error"
# Waiting for a person at a human stage (and below it): not exported, replanned once labeled.
PENDING = "pending"
# Reason prefix of a row whose outcome was not cached (a model's empty or refused output): the next run
# computes it again (see `stale_images`'s `retry_before`).
RETRY = "retry: "


@dataclass
class Row:
    image_id: str
    seq: int
    status: str
    reason: str | None = None
    at_stage: str | None = None
    props: dict[str, Any] = field(default_factory=dict)
    updated_at: Any = None
    # The props as stored (JSON text), where a reader kept it: what an export's digest hashes (`read_export`).
    text: str | None = field(default=None, compare=False, repr=False)

    def same_content(self, other: Row) -> bool:
        return (self.seq, self.status, self.reason, self.at_stage, self.props) == (
            other.seq,
            other.status,
            other.reason,
            other.at_stage,
            other.props,
        )


def read_rows(
    conn: Any, workflow: str, stage: str, image_ids: list[str] | None = None
) -> dict[str, list[Row]]:
    """Rows of a stage, grouped by image, seq-ordered; all images when `image_ids` is None."""
    sql = (
        "SELECT image_id, seq, status, reason, at_stage, props, updated_at FROM stage_rows "
        "WHERE workflow = ? AND stage = ?"
    )
    params: list[Any] = [workflow, stage]
    if image_ids is not None:
        sql += " AND image_id IN (SELECT unnest(?::VARCHAR[]))"
        params.append(image_ids)
    result: dict[str, list[Row]] = {}
    for image_id, seq, status, reason, at_stage, props, at in conn.execute(
        sql + " ORDER BY image_id, seq", params
    ).fetchall():
        result.setdefault(image_id, []).append(
            Row(image_id, seq, status, reason, at_stage, json.loads(props) if props else {}, at)
        )
    return result


@dataclass
class ExportRows:
    """What a Save exports from its upstream stage (`read_export`): the kept rows whose image still has a
    source file, and the counts it reports about the others."""

    rows: list[Row]
    gone: int  # kept rows left out: their source file was deleted or changed
    unprocessed: int  # discovered images the stage has no row for yet


def read_export(conn: Any, workflow: str, stage: str, roots: list[str], parse: bool = True) -> ExportRows:
    """The kept rows of `stage` whose image is present under one of the Load folders `roots`, in (image, seq)
    order, each with its stored JSON text (`Row.text`). Filtered in SQL: rejected rows and rows of deleted
    files are neither fetched nor parsed. `parse=False` leaves `props` empty: for a caller that only hashes
    the texts (is the export current?)."""
    present = (
        "SELECT DISTINCT sha256 AS image_id FROM files WHERE sha256 IS NOT NULL "
        "AND root IN (SELECT unnest(?::VARCHAR[]))"
    )
    found = conn.execute(
        f"""
        SELECT image_id, seq, props::VARCHAR, updated_at FROM stage_rows
        WHERE workflow = ? AND stage = ? AND status = '{KEPT}' AND image_id IN ({present})
        ORDER BY image_id, seq
        """,
        [workflow, stage, roots],
    ).fetchall()
    rows = [
        Row(image_id, seq, KEPT, None, None, json.loads(text) if text and parse else {}, at, text or "")
        for image_id, seq, text, at in found
    ]
    gone, unprocessed = conn.execute(
        f"""
        WITH present AS ({present}),
             stage AS (SELECT image_id, status FROM stage_rows WHERE workflow = ? AND stage = ?)
        SELECT (SELECT count(*) FROM stage WHERE status = '{KEPT}' AND image_id NOT IN (SELECT image_id FROM present)),
               (SELECT count(*) FROM present WHERE image_id NOT IN (SELECT image_id FROM stage))
        """,
        [roots, workflow, stage],
    ).fetchone()
    return ExportRows(rows, gone, unprocessed)


def write_rows(
    conn: Any,
    workflow: str,
    stage: str,
    fingerprint: str,
    run_id: str | None,
    rows: list[Row],
    upstream: list[str] | None = None,
) -> int:
    """Replace the rows of the images in `rows` (all their seqs) in one statement pair.

    An image whose rows come out identical keeps its old `updated_at`, so downstream stages are not made
    stale by a recomputation that changed nothing; unless that stamp is older than a row of the `upstream`
    stages (an input changed without changing this stage's output, e.g. a Concat input whose rejection
    changed while another input keeps the image): kept, it would leave the image stale forever.
    Returns the number of images whose content changed.
    """
    if not rows:
        return 0
    ids = sorted({r.image_id for r in rows})
    previous = read_rows(conn, workflow, stage, ids)
    newest_input = _newest(conn, workflow, upstream, ids) if upstream else {}
    grouped: dict[str, list[Row]] = {}
    for row in rows:
        grouped.setdefault(row.image_id, []).append(row)
    changed = 0
    stamps: list[Any] = []
    for image_id, new in grouped.items():
        old = previous.get(image_id, [])
        same = len(old) == len(new) and all(a.same_content(b) for a, b in zip(old, new, strict=True))
        changed += not same
        stamp = min(r.updated_at for r in old) if same else None
        if stamp is not None and image_id in newest_input and newest_input[image_id] > stamp:
            stamp = None
        stamps.extend([stamp] * len(new))
    rows = [r for group in grouped.values() for r in group]
    conn.execute(
        "DELETE FROM stage_rows WHERE workflow = ? AND stage = ? AND image_id IN (SELECT unnest(?::VARCHAR[]))",
        [workflow, stage, ids],
    )
    conn.execute(
        """
        INSERT INTO stage_rows
        SELECT ?, ?, image_id, seq, status, reason, at_stage, props::JSON, ?, ?, coalesce(stamp, current_timestamp)
        FROM (SELECT unnest(?::VARCHAR[]) AS image_id, unnest(?::INTEGER[]) AS seq, unnest(?::VARCHAR[]) AS status,
                     unnest(?::VARCHAR[]) AS reason, unnest(?::VARCHAR[]) AS at_stage,
                     unnest(?::VARCHAR[]) AS props, unnest(?::TIMESTAMP[]) AS stamp)
        """,
        [
            workflow,
            stage,
            fingerprint,
            run_id,
            [r.image_id for r in rows],
            [r.seq for r in rows],
            [r.status for r in rows],
            [r.reason for r in rows],
            [r.at_stage for r in rows],
            [json.dumps(r.props, separators=(",", ":")) for r in rows],
            stamps,
        ],
    )
    return changed


def _newest(conn: Any, workflow: str, stages: list[str], image_ids: list[str]) -> dict[str, Any]:
    """Newest `updated_at` per image over the rows of `stages`."""
    rows = conn.execute(
        "SELECT image_id, max(updated_at) FROM stage_rows WHERE workflow = ? "
        "AND stage IN (SELECT unnest(?::VARCHAR[])) AND image_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY image_id",
        [workflow, stages, image_ids],
    ).fetchall()
    return dict(rows)


def stale_images(
    conn: Any,
    workflow: str,
    stage: str,
    fingerprint: str,
    upstream: list[str],
    image_ids: list[str],
    retry_before: Any = None,
) -> set[str]:
    """Images whose row for `stage` is missing, was made with another fingerprint, is older than an
    upstream row (the upstream was recomputed since), or failed. With `retry_before` (a timestamp), also
    those whose outcome this stage flagged for retry (not cached) before that time: a new run retries them,
    the rounds of one run do not loop on them."""
    return stale_by_stage(conn, workflow, [(stage, fingerprint, upstream)], image_ids, retry_before)[stage]


def stale_by_stage(
    conn: Any,
    workflow: str,
    specs: list[tuple[str, str, list[str]]],
    image_ids: list[str],
    retry_before: Any = None,
) -> dict[str, set[str]]:
    """`stale_images` for several stages, each (stage, fingerprint, upstream stages), in one query: the
    workflow's rows are read once, not twice per stage."""
    names = [s for s, _, _ in specs]
    involved = sorted({*names, *(u for _, _, ups in specs for u in ups)})
    rows = conn.execute(
        """
        WITH wanted AS (SELECT unnest(?::VARCHAR[]) AS image_id),
        spec AS (SELECT unnest(?::VARCHAR[]) AS stage, unnest(?::VARCHAR[]) AS fp, unnest(?::VARCHAR[][]) AS ups),
        agg AS (
            SELECT stage, image_id, min(fingerprint) AS fp, max(fingerprint) AS fp2, min(updated_at) AS at,
                   max(updated_at) AS newest, bool_or(status = 'error') AS failed,
                   min(updated_at) FILTER (WHERE starts_with(coalesce(reason, ''), ?)
                                           AND (status = 'kept' OR at_stage = stage)) AS retry_at
            FROM stage_rows WHERE workflow = ? AND stage IN (SELECT unnest(?::VARCHAR[]))
            GROUP BY stage, image_id
        ),
        edges AS (SELECT stage, unnest(ups) AS up FROM spec),
        ups AS (
            SELECT e.stage, a.image_id, max(a.newest) AS at FROM edges e JOIN agg a ON a.stage = e.up
            GROUP BY e.stage, a.image_id
        )
        SELECT s.stage, w.image_id FROM spec s CROSS JOIN wanted w
        LEFT JOIN agg m ON m.stage = s.stage AND m.image_id = w.image_id
        LEFT JOIN ups u ON u.stage = s.stage AND u.image_id = w.image_id
        WHERE m.image_id IS NULL OR m.failed OR m.fp <> s.fp OR m.fp2 <> s.fp OR (u.at IS NOT NULL AND u.at > m.at)
           OR (?::TIMESTAMP IS NOT NULL AND m.retry_at < ?::TIMESTAMP)
        """,
        [
            image_ids,
            names,
            [fp for _, fp, _ in specs],
            [list(ups) for _, _, ups in specs],
            RETRY,
            workflow,
            involved,
            retry_before,
            retry_before,
        ],
    ).fetchall()
    stale: dict[str, set[str]] = {name: set() for name in names}
    for stage, image_id in rows:
        stale[stage].add(image_id)
    return stale


def counts(conn: Any, workflow: str, stage: str) -> dict[str, int]:
    rows = conn.execute(
        "SELECT status, count(DISTINCT image_id) FROM stage_rows WHERE workflow = ? AND stage = ? GROUP BY status",
        [workflow, stage],
    ).fetchall()
    return dict(rows)
