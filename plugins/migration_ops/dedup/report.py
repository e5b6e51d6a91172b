"""The auditors' de-duplication report of one run: clusters, scores, field agreement.

Written beside the run's reconciliation report (``reports/<run_id>/dedup.md`` and
``dedup.json``) by :func:`migration_ops.reports.write`. An auditor sees which legacy ids
were linked to which survivor, with what match probability, which fields agreed exactly,
nearly, not at all or were missing on one side, what waits in the review band and how many
human decisions are in force. Ids, scores and field names only: never a name, a date or an
address (no PHI), so the report can leave the database's security boundary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from migration_ops.db import connect

_FLAGS = ("exact", "similar", "different", "missing")


def _flags(agreement: dict[str, str]) -> dict[str, list[str]]:
    return {flag: sorted(f for f, v in agreement.items() if v == flag) for flag in _FLAGS}


def collect(target_dsn: str, run_id: str) -> dict[str, Any] | None:
    """The run's de-duplication evidence, or ``None`` when the run de-duplicated nothing."""
    with connect(target_dsn, application_name="migration:report") as conn:
        if conn.execute("select to_regclass('migration.dedup_members')").fetchone() == (None,):
            return None
        members = conn.execute(
            "select entity, survivor_legacy_id, array_agg(legacy_id order by legacy_id) "
            "from migration.dedup_members where run_id = %s group by 1, 2 "
            "having count(*) > 1 order by 1, 2",
            (run_id,),
        ).fetchall()
        # the links inside this run's clusters (scores as last refreshed)
        links = conn.execute(
            "select l.entity, l.legacy_id_l, l.legacy_id_r, l.match_probability, l.agreement, "
            "l.linked_by from migration.dedup_links as l "
            "join migration.dedup_members as a on a.run_id = %s and a.entity = l.entity "
            "and a.legacy_id = l.legacy_id_l "
            "join migration.dedup_members as b on b.run_id = a.run_id and b.entity = l.entity "
            "and b.legacy_id = l.legacy_id_r and b.survivor_legacy_id = a.survivor_legacy_id "
            "order by 1, 2, 3",
            (run_id,),
        ).fetchall()
        review = conn.execute(
            "select entity, legacy_id_l, legacy_id_r, match_probability, match_weight, agreement "
            "from migration.dedup_review where last_run_id = %s order by 4 desc, 2, 3",
            (run_id,),
        ).fetchall()
        decisions = conn.execute(
            "select entity, decision, count(*) from migration.dedup_decisions group by 1, 2 "
            "order by 1, 2"
        ).fetchall()
    if not (members or review):
        return None
    return _shape(run_id, members, links, review, decisions)


def _shape(
    run_id: str, members: list[Any], links: list[Any], review: list[Any], decisions: list[Any]
) -> dict[str, Any]:
    by_cluster: dict[tuple[str, int], list[dict[str, Any]]] = {}
    survivor_of = {(e, m): s for e, s, ms in members for m in ms}
    for entity, left, right, probability, agreement, linked_by in links:
        key = (entity, survivor_of.get((entity, left), left))
        by_cluster.setdefault(key, []).append(
            {"pair": [left, right], "match_probability": probability, "linked_by": linked_by}
            | _flags(agreement)
        )
    return {
        "run_id": run_id,
        "clusters": [
            {"entity": e, "survivor": s, "members": ms, "links": by_cluster.get((e, s), [])}
            for e, s, ms in members
        ],
        "review": [
            {"entity": e, "pair": [l_, r_], "match_probability": p, "match_weight": w}
            | _flags(agreement)
            for e, l_, r_, p, w, agreement in review
        ],
        "decisions_in_force": [{"entity": e, "decision": d, "pairs": n} for e, d, n in decisions],
    }


def write(target_dsn: str, run_id: str, out: Path) -> Path | None:
    """Write ``dedup.json`` and ``dedup.md`` into ``out``; ``None`` when there is nothing."""
    data = collect(target_dsn, run_id)
    if data is None:
        return None
    (out / "dedup.json").write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    lines = [
        f"# De-duplication report: `{run_id}`",
        "",
        "Linked, not destroyed: every member keeps its own row and legacy id and points at the "
        "survivor (`merged_into`). Ids, scores and field agreement only (docs/dedup.md).",
        "",
        f"## Clusters ({len(data['clusters'])})",
        "",
        "| entity | survivor | members | pair | p | linked by | agreed | nearly | disagreed "
        "| missing |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cluster in data["clusters"]:
        for link in cluster["links"] or [{"pair": [], "match_probability": None}]:
            lines.append(_row(cluster, link))
    lines += [
        "",
        f"## Review band ({len(data['review'])} pairs await a decision)",
        "",
        "| entity | pair | p | agreed | nearly | disagreed | missing |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {r['entity']} | {r['pair'][0]}–{r['pair'][1]} | {r['match_probability']:.4f} | "
            f"{', '.join(r['exact'])} | {', '.join(r['similar'])} | {', '.join(r['different'])} "
            f"| {', '.join(r['missing'])} |"
            for r in data["review"]
        ),
        "",
        "Decisions in force: "
        + (
            ", ".join(
                f"{d['entity']} {d['decision']} {d['pairs']}" for d in data["decisions_in_force"]
            )
            or "none"
        ),
    ]
    path = out / "dedup.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _row(cluster: dict[str, Any], link: dict[str, Any]) -> str:
    pair = "–".join(str(i) for i in link["pair"])
    probability = link.get("match_probability")
    score = "" if probability is None else f"{probability:.4f}"
    flags = " | ".join(", ".join(link.get(f, [])) for f in _FLAGS)
    members = ", ".join(str(m) for m in cluster["members"])
    return (
        f"| {cluster['entity']} | {cluster['survivor']} | {members} | {pair} | {score} | "
        f"{link.get('linked_by', '')} | {flags} |"
    )
