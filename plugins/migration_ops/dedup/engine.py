"""Probabilistic record linkage of person records: Splink (Fellegi–Sunter) on DuckDB.

The entry point is :func:`deduplicate`: records (a DataFrame), a mapping of canonical roles
(``first_name``, ``birthdate``, ...; see :data:`include.dedup.model.ROLES`) onto its
columns, and thresholds in; scored pairs and clusters out. Nothing here knows about the
migration: the phase step (:mod:`migration_ops.dedup.step`) and the command line
(``python -m migration_ops.cli dedup``) are two callers among any.

Why Splink rather than hand-written rules: its m/u weights are learnt from the data, so a
rare surname agreeing counts for more than a common sex agreeing, and graded comparison
levels turn a typo into weaker (not negative) evidence. The model itself (levels, blocking,
priors) is configuration in :mod:`include.dedup.model`.

No value ever leaves this module through a log line: Splink's own logging is silenced and
results carry ids, probabilities and agreement levels only.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pandas as pd

from include.dedup import model as config

#: Agreement of one field in a scored pair, from Splink's comparison vector value.
MISSING, DIFFERENT, SIMILAR, EXACT = "missing", "different", "similar", "exact"

_DATE_FORMATS = ("%Y%m%d", "%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y", "%Y-%m-%dT%H:%M:%S")


@dataclass(frozen=True)
class Thresholds:
    """Match-probability bands: ``>= link`` linked, ``>= review`` for a human, else distinct."""

    link: float = config.DEFAULT_LINK_THRESHOLD
    review: float = config.DEFAULT_REVIEW_THRESHOLD

    def __post_init__(self) -> None:
        if not 0 < self.review <= self.link <= 1:
            raise ValueError("thresholds must satisfy 0 < review <= link <= 1")


@dataclass
class DedupResult:
    """What :func:`deduplicate` found.

    Attributes:
        pairs: one row per scored pair at or above the review threshold: ``id_l``, ``id_r``
            (``id_l < id_r``), ``match_probability``, ``match_weight``, ``band`` (``link`` or
            ``review``) and one ``agree_<role>`` column per mapped role (exact, similar,
            different, missing).
        clusters: one row per input record: ``record_id``, ``cluster_id`` (the smallest
            record id of its cluster; a singleton is its own cluster) and
            ``match_probability`` (the record's best pairwise probability at or above the
            review threshold, 0 when none).
        roles: the mapped roles, in model order.
        training: ``em`` (m learnt by expectation maximisation), ``priors``, or ``given``
            (the ``model`` passed in was applied as it was).
        model: the linkage model that scored the pairs, as Splink's settings dictionary
            (comparisons, λ, m and u probabilities: parameters, no record value); ``{}``
            when there was nothing to score.
    """

    pairs: pd.DataFrame
    clusters: pd.DataFrame
    roles: tuple[str, ...]
    training: str
    notes: list[str] = field(default_factory=list)
    model: dict[str, Any] = field(default_factory=dict)

    def linked_pairs(self) -> set[tuple[Any, Any]]:
        """Every pair of records put in the same cluster (what pairwise metrics compare)."""
        return pairs_within(self.clusters["record_id"], self.clusters["cluster_id"])


def pairs_within(ids: pd.Series | list[Any], groups: pd.Series | list[Any]) -> set[tuple[Any, Any]]:
    """All unordered pairs ``(a, b)``, ``a < b``, of ids that share a group value."""
    members: dict[Any, list[Any]] = {}
    for record_id, group in zip(ids, groups, strict=True):
        if group is not None and not (isinstance(group, float) and pd.isna(group)):
            members.setdefault(group, []).append(record_id)
    result: set[tuple[Any, Any]] = set()
    for group_ids in members.values():
        ordered = sorted(group_ids)
        for i, a in enumerate(ordered):
            result.update((a, b) for b in ordered[i + 1 :])
    return result


# ------------------------------------------------------------------ normalisation ----
def parse_date(value: object) -> str | None:
    """ISO ``YYYY-MM-DD`` of a date in a usual text form; ``None`` when it cannot be parsed.

    An unparseable date is missing evidence, not an error: one bad cell must not stop a run.
    """
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, datetime | date):
        return value.strftime("%Y-%m-%d")
    text = str(value).strip()
    if text.endswith(".0") and text[:-2].isdigit():  # an integer column read as float
        text = text[:-2]
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).strftime("%Y-%m-%d")
        except ValueError:
            continue
    return None


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def normalise(value: object, how: str) -> str | None:
    """One cell in the form its role compares on; blank, ``null`` and ``nan`` are missing."""
    if how == "date":
        return parse_date(value)
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value).strip()
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    if how == "name":
        text = " ".join(_fold(text).lower().replace("-", " ").split())
    elif how == "digits":
        text = "".join(c for c in text if c.isdigit())
    elif how == "lower":
        text = text.lower()
    elif how == "compact":
        text = "".join(text.lower().split())
    return None if text.lower() in ("", "null", "nan", "none") else text


def prepare(records: pd.DataFrame, fields: Mapping[str, str], id_column: str) -> pd.DataFrame:
    """The records as Splink reads them: ``unique_id`` plus one normalised column per role.

    Raises:
        ValueError: an unknown role, a column that is not there, or duplicate record ids.
    """
    unknown = sorted(set(fields) - set(config.ROLES))
    if unknown:
        raise ValueError(f"unknown roles {unknown}; known: {', '.join(config.ROLES)}")
    missing = sorted({id_column, *fields.values()} - set(records.columns))
    if missing:
        raise ValueError(f"columns not in the input: {missing}")
    if records[id_column].duplicated().any():
        raise ValueError(f"id column {id_column!r} has duplicate values")
    frame = pd.DataFrame({"unique_id": records[id_column].to_numpy()})
    for role in config.ROLES:
        if role in fields:
            how = config.MODEL[role].normalise
            frame[role] = [normalise(v, how) for v in records[fields[role]].to_numpy()]
    return frame


# ------------------------------------------------------------------ the Splink model ----
def _levels(role: str, kind: str) -> list[tuple[str, str]]:
    """(SQL condition, label) of each non-null level of a role, most similar first."""
    left, right = f'"{role}_l"', f'"{role}_r"'
    exact = (f"{left} = {right}", "exact")
    user = "regexp_extract({}, '^[^@]+')"
    by_kind = {
        "name": [
            exact,
            *(
                (f"jaro_winkler_similarity({left}, {right}) >= {t}", f"jaro-winkler >= {t}")
                for t in (0.92, 0.88, 0.7)
            ),
        ],
        "date": [
            exact,
            (
                f"substr({left}, 1, 4) = substr({right}, 1, 4) "
                f"and substr({left}, 6, 2) = substr({right}, 9, 2) "
                f"and substr({left}, 9, 2) = substr({right}, 6, 2)",
                "day and month swapped",
            ),
            (
                f"substr({left}, 6, 5) = substr({right}, 6, 5) and abs("
                f"try_cast(substr({left}, 1, 4) as integer) - "
                f"try_cast(substr({right}, 1, 4) as integer)) = 1",
                "year off by one",
            ),
            (f"damerau_levenshtein({left}, {right}) <= 1", "one edit"),
        ],
        "exact": [exact],
        "email": [
            exact,
            (f"{user.format(left)} = {user.format(right)}", "same user part"),
            (f"jaro_winkler_similarity({left}, {right}) >= 0.88", "jaro-winkler >= 0.88"),
        ],
        "edit": [
            exact,
            (f"damerau_levenshtein({left}, {right}) <= 1", "one edit"),
            (f"damerau_levenshtein({left}, {right}) <= 2", "two edits"),
        ],
        "text": [
            exact,
            (f"jaro_winkler_similarity({left}, {right}) >= 0.9", "jaro-winkler >= 0.9"),
            (f"jaro_winkler_similarity({left}, {right}) >= 0.7", "jaro-winkler >= 0.7"),
        ],
    }
    return by_kind[kind]


def compared_roles(roles: tuple[str, ...]) -> tuple[str, ...]:
    """The roles that get a comparison of their own: ``office`` folds into ``doctor``.

    Doctor and office are one piece of evidence (where the person is treated), not two:
    counting both would double the weight of every patient of a large practice.
    """
    if "doctor" in roles:
        return tuple(r for r in roles if r != "office")
    return roles


def _role_levels(role: str, roles: tuple[str, ...]) -> list[tuple[str, str]]:
    if role == "doctor" and "office" in roles:
        return [
            ('"doctor_l" = "doctor_r"', "exact"),
            ('"office_l" = "office_r"', "same office, other doctor"),
        ]
    return _levels(role, config.MODEL[role].kind)


def _priors(role: str, roles: tuple[str, ...]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(m, u) priors of a role's levels, most similar first, "different" last."""
    if role == "doctor" and "office" in roles:
        return config.CARE_M_PRIORS, config.CARE_U_PRIORS
    if role in config.CONTEXT_ROLES:
        return config.CONTEXT_M_PRIORS, config.CONTEXT_U_PRIORS
    kind = config.MODEL[role].kind
    return config.M_PRIORS[kind], config.U_PRIORS[kind]


def _comparison(role: str, roles: tuple[str, ...], *, small: bool) -> Any:
    """The Splink comparison of one role, its m priors set (EM, when it runs, starts there).

    ``small`` data (fewer than ``MIN_RECORDS_FOR_U`` records) also gets the u priors and no
    term frequencies: a random sample of a handful of records is mostly its own duplicates.
    """
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    levels = [*_role_levels(role, roles), ("else", "different")]
    creators: list[Any] = [cll.NullLevel(role)]
    for (condition, label), m, u in zip(levels, *_priors(role, roles), strict=True):
        level: Any = cll.ElseLevel() if condition == "else" else cll.CustomLevel(condition, label)
        level = level.configure(m_probability=m, u_probability=u if small else unset())
        if label == "exact" and role in config.TERM_FREQUENCY_ROLES and not small:
            # a rare value agreeing is stronger evidence than a common one
            level = level.configure(tf_adjustment_column=role, tf_adjustment_weight=1.0)
        creators.append(level)
    return cl.CustomComparison(creators, output_column_name=role)


def unset() -> Any:
    """Splink's marker for "not supplied" (so ``configure`` leaves u to be estimated)."""
    from splink.internals.comparison_level_creator import unsupplied_option

    return unsupplied_option


def _rules(rules: tuple[tuple[str, ...], ...], roles: tuple[str, ...]) -> list[Any]:
    from splink import block_on

    return [block_on(*rule) for rule in rules if set(rule) <= set(roles)]


def _settings(roles: tuple[str, ...], *, small: bool) -> Any:
    from splink import SettingsCreator

    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[_comparison(role, roles, small=small) for role in compared_roles(roles)],
        blocking_rules_to_generate_predictions=_rules(config.BLOCKING_RULES, roles),
        retain_matching_columns=True,  # needed for gamma_<role>; values are dropped in _pairs
        retain_intermediate_calculation_columns=False,
    )


def _train(linker: Any, roles: tuple[str, ...], records: int, notes: list[str], *, em: bool) -> str:
    """Estimate λ, u and (with enough records) m; return how m was obtained.

    λ (the prior that two random records match) is set on Splink's settings object: its
    public API only estimates λ from deterministic rules, which find nothing on small data
    (λ = 0 breaks prediction), so the prior comes first and survives a failed estimate.
    """
    settings = linker._settings_obj
    prior = min(0.5, 2 * config.EXPECTED_DUPLICATE_SHARE / max(records, 2))
    settings._probability_two_random_records_match = prior
    deterministic = _rules(config.DETERMINISTIC_RULES, roles)
    if deterministic and records >= config.MIN_RECORDS_FOR_EM:
        try:
            linker.training.estimate_probability_two_random_records_match(
                deterministic, recall=config.DETERMINISTIC_RECALL
            )
        except Exception as error:  # noqa: BLE001 - keep the prior
            notes.append(f"lambda prior kept ({type(error).__name__})")
    if not 0 < settings._probability_two_random_records_match < 1:
        settings._probability_two_random_records_match = prior  # no exact duplicate at all
    if records >= config.MIN_RECORDS_FOR_U:
        linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=config.SEED)
    if not em or records < config.MIN_RECORDS_FOR_EM:
        return "priors"
    trained = 0
    for rule in _rules(config.TRAINING_RULES, roles):
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(rule)
            trained += 1
        except Exception as error:  # noqa: BLE001 - another rule may still train
            notes.append(f"em rule skipped ({type(error).__name__})")
    return "em" if trained else "priors"


# ------------------------------------------------------------------ entry point ----
def deduplicate(
    records: pd.DataFrame,
    fields: Mapping[str, str],
    *,
    id_column: str,
    thresholds: Thresholds = Thresholds(),  # noqa: B008 - frozen, immutable default
    train: bool = True,
    model: Mapping[str, Any] | None = None,
) -> DedupResult:
    """Find the records that describe the same person.

    Args:
        records: one row per record; any columns.
        fields: canonical role → column of ``records`` (any subset of the model's roles).
        id_column: column with a unique id per record (ints or strings).
        thresholds: the link and review bands on the match probability.
        train: estimate m by expectation maximisation when there are enough records
            (``MIN_RECORDS_FOR_EM``); otherwise, or when ``False``, keep the m priors.
        model: a model an earlier call returned (:attr:`DedupResult.model`, same fields):
            applied as it is, nothing estimated: λ and u stay those of the population it was
            estimated on (u's random sample of a million pairs is most of a call's time).

    Returns:
        Scored pairs (review band and above) and one cluster per record.
    """
    import duckdb
    from splink import DuckDBAPI, Linker

    logging.getLogger("splink").setLevel(logging.ERROR)  # its info lines may quote values
    frame = prepare(records, fields, id_column)
    roles = tuple(role for role in config.ROLES if role in fields)
    if not roles:
        raise ValueError("map at least one role onto a column")
    notes: list[str] = []
    if len(frame) < 2:
        return DedupResult(
            _empty_pairs(roles), _clusters(frame, _empty_pairs(roles)), roles, "priors"
        )
    connection = duckdb.connect()
    try:
        connection.execute("set threads = 2")
        api = DuckDBAPI(connection=connection)
        if model is not None:
            linker = Linker(api.register(frame), dict(model), log_level=logging.ERROR)
            training = "given"
        else:
            settings = _settings(roles, small=len(frame) < config.MIN_RECORDS_FOR_U)
            linker = Linker(api.register(frame), settings, log_level=logging.ERROR)
            training = _train(linker, roles, len(frame), notes, em=train)
        scored = linker.inference.predict(threshold_match_probability=thresholds.review)
        raw = scored.as_pandas_dataframe()
        used = linker.misc.save_model_to_json()
    finally:
        connection.close()
    pairs = _pairs(raw, roles, thresholds)
    return DedupResult(pairs, _clusters(frame, pairs), roles, training, notes, used)


def _empty_pairs(roles: tuple[str, ...]) -> pd.DataFrame:
    columns = ["id_l", "id_r", "match_probability", "match_weight", "band"]
    return pd.DataFrame(columns=[*columns, *(f"agree_{r}" for r in compared_roles(roles))])


def _pairs(raw: pd.DataFrame, roles: tuple[str, ...], thresholds: Thresholds) -> pd.DataFrame:
    """Splink's predictions as id-ordered pairs with a band and per-role agreement."""
    if raw.empty:
        return _empty_pairs(roles)
    left, right = raw["unique_id_l"], raw["unique_id_r"]
    swap = left > right
    pairs = pd.DataFrame(
        {
            "id_l": left.where(~swap, right).to_numpy(),
            "id_r": right.where(~swap, left).to_numpy(),
            "match_probability": raw["match_probability"].astype(float).to_numpy(),
            "match_weight": raw["match_weight"].astype(float).to_numpy(),
        }
    )
    pairs["band"] = [
        "link" if p >= thresholds.link else "review" for p in pairs["match_probability"]
    ]
    for role in compared_roles(roles):
        gamma = raw[f"gamma_{role}"].astype(int).to_numpy()
        top = len(_role_levels(role, roles))
        pairs[f"agree_{role}"] = [_agreement(int(g), top) for g in gamma]
    return pairs.sort_values(["id_l", "id_r"], ignore_index=True)


def _agreement(gamma: int, top: int) -> str:
    if gamma < 0:
        return MISSING
    if gamma == 0:
        return DIFFERENT
    return EXACT if gamma == top else SIMILAR


def cluster_ids(ids: list[Any], linked: Any) -> dict[Any, Any]:
    """Connected components of the ``linked`` pairs: record id -> smallest id of its cluster."""
    parent: dict[Any, Any] = {}

    def find(x: Any) -> Any:
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    for a, b in linked:
        root_a, root_b = find(a), find(b)
        if root_a != root_b:
            parent[max(root_a, root_b)] = min(root_a, root_b)
    return {i: find(i) for i in ids}


def _clusters(frame: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """One row per record: its cluster (linked pairs) and best match probability."""
    linked = pairs[pairs["band"] == "link"]
    ids = list(frame["unique_id"])
    clusters = cluster_ids(ids, zip(linked["id_l"], linked["id_r"], strict=True))
    best: dict[Any, float] = {}
    for a, b, p in zip(pairs["id_l"], pairs["id_r"], pairs["match_probability"], strict=True):
        best[a] = max(best.get(a, 0.0), float(p))
        best[b] = max(best.get(b, 0.0), float(p))
    return pd.DataFrame(
        {
            "record_id": ids,
            "cluster_id": [clusters[i] for i in ids],
            "match_probability": [round(best.get(i, 0.0), 6) for i in ids],
        }
    )
