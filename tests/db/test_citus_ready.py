"""The schema stays ready for Citus (docs/scaling.md): what the catalogue can tell here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from tracker import store

# Distributed by person_id, co-located (docs/scaling.md).
DISTRIBUTED = ("positions", "latest_positions")
# Reference tables: one copy on every node.
REFERENCE = ("units", "people", "devices", "users")


def with_partitions(session, table: str) -> list[str]:
    """Return a table and every partition under it."""
    rows = session.execute(
        text(
            "WITH RECURSIVE tree(oid) AS ("
            "  SELECT CAST(:t AS regclass) UNION ALL"
            "  SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.oid"
            ") SELECT CAST(oid AS regclass)::text FROM tree"
        ),
        {"t": table},
    )
    return [name for (name,) in rows]


def unique_indexes(session, table: str) -> dict[str, list[str]]:
    """Return each unique index (primary keys included) of a table and its columns."""
    rows = session.execute(
        text(
            "SELECT CAST(x.indexrelid AS regclass)::text, a.attname"
            " FROM pg_index x"
            " JOIN LATERAL unnest(x.indkey) AS k(attnum) ON true"
            " LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum"
            " WHERE x.indrelid = CAST(:t AS regclass) AND x.indisunique"
        ),
        {"t": table},
    )
    found: dict[str, list[str]] = {}
    for index, column in rows:
        # An expression column has no name; it cannot be the distribution column.
        found.setdefault(index, []).append(column or "<expression>")
    return found


def foreign_keys(session, table: str) -> list[tuple[str, str, str, list[str]]]:
    """Return (name, referenced table, ON DELETE action, columns) of a table's foreign keys."""
    rows = session.execute(
        text(
            "SELECT c.conname, CAST(c.confrelid AS regclass)::text, c.confdeltype,"
            "       array_agg(a.attname ORDER BY a.attname)"
            " FROM pg_constraint c"
            " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)"
            " WHERE c.conrelid = CAST(:t AS regclass) AND c.contype = 'f'"
            " GROUP BY c.conname, c.confrelid, c.confdeltype"
        ),
        {"t": table},
    )
    return [(name, target, action, list(columns)) for name, target, action, columns in rows]


def test_positions_is_range_partitioned_on_ts(session):
    strategy, columns = session.execute(
        text(
            "SELECT p.partstrat, array_agg(a.attname)"
            " FROM pg_partitioned_table p"
            " JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = ANY (p.partattrs)"
            " WHERE p.partrelid = CAST('positions' AS regclass) GROUP BY p.partstrat"
        )
    ).one()
    assert (strategy, columns) == ("r", ["ts"])


def test_every_unique_key_of_the_distributed_tables_holds_person_id(session):
    # Citus enforces uniqueness only inside a shard: every primary key and unique index
    # must contain the distribution column, on the parent and on every partition.
    today = datetime.now(UTC).date()
    for day in (today, today + timedelta(days=1)):
        store.positions.ensure_partition(session, day)  # rolled back with the test's transaction
    checked = []
    for table in DISTRIBUTED:
        for relation in with_partitions(session, table):
            indexes = unique_indexes(session, relation)
            assert indexes, f"{relation} has no primary key: a resend could be stored twice"
            for index, columns in indexes.items():
                assert "person_id" in columns, f"{index} on {relation} lacks person_id: {columns}"
            checked.append(relation)
    assert len(checked) >= 4  # positions, two partitions of it, latest_positions


def test_distribution_columns_have_one_type(session):
    # Co-location needs the same distribution column type; people.id joins both.
    types = session.execute(
        text(
            "SELECT DISTINCT format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE (attrelid, attname) IN ("
            "  (CAST('positions' AS regclass), 'person_id'),"
            "  (CAST('latest_positions' AS regclass), 'person_id'),"
            "  (CAST('people' AS regclass), 'id'))"
        )
    ).all()
    assert types == [("integer",)]


def test_foreign_keys_are_ones_citus_can_keep(session):
    # positions is the ingest hot path: no foreign key at all (nothing to check per row,
    # and a day's partition can be dropped without touching other tables).
    for relation in with_partitions(session, "positions"):
        assert foreign_keys(session, relation) == [], relation
    # Citus allows a foreign key from a distributed table only to a co-located distributed
    # table (through the distribution column) or to a reference table; and it cannot
    # SET NULL / SET DEFAULT the distribution column.
    for name, target, action, columns in foreign_keys(session, "latest_positions"):
        assert target in REFERENCE, f"{name} points at {target}, not a reference table"
        assert not ("person_id" in columns and action in ("n", "d")), name
    # A reference table may reference only reference tables.
    for table in REFERENCE:
        for name, target, _, _ in foreign_keys(session, table):
            assert target in REFERENCE, f"{name}: reference table {table} points at {target}"
