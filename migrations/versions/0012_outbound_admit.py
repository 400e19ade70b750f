"""outbound_admit(): a batch of recipients counted in one PostgreSQL call (no schema change; SQLite: nothing)

The Postfix policy service decides the recipients that arrived together in one transaction (group commit).
On PostgreSQL that transaction is this function, called once per batch in autocommit: it takes a transaction
advisory lock per counter (two-key form, class 1869968482 'outb', the key's hashtext; in hash order: replicas
wait for each other and never deadlock; no row is written for a lock), reads the window's sums (a new snapshot,
after the locks: what the previous holder committed is counted), decides the requests in arrival order exactly
as actions/outbound_store.py:decide_batch does, and adds the accepted ones to this minute's `outbound_counts`
rows. Only this function writes `outbound_counts` on PostgreSQL.

Arguments: p_keys, the batch's counter keys (sorted); one entry per (request, counter) pair in p_request (the
request's number, 1-based, ascending), p_key (its key's index in p_keys) and p_limit; the minute bucket and
the window's first bucket. Returns per request `first_full` (0: accepted; else the position, 1-based, of the
first full counter among the request's pairs) and `seen_total` (the count the verdict saw).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 22:40:00
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

FUNCTION = """
CREATE OR REPLACE FUNCTION outbound_admit(
    p_keys text[], p_request int[], p_key int[], p_limit int[], p_bucket timestamptz, p_since timestamptz,
    OUT first_full int[], OUT seen_total int[]
) LANGUAGE plpgsql AS $$
DECLARE
    totals int[];
    added int[];
    n int := coalesce(array_length(p_request, 1), 0);
    i int := 1;
    j int;
    m int;
    pos int;
    hit int;
    seen int;
    h int;
BEGIN
    first_full := '{}';
    seen_total := '{}';
    FOR h IN SELECT DISTINCT hashtext(k) FROM unnest(p_keys) AS k ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock(1869968482, h);  -- 'outb': a key space of its own, in hash order
    END LOOP;
    SELECT array_agg(coalesce(s.cnt, 0) ORDER BY k.ord) INTO totals
        FROM unnest(p_keys) WITH ORDINALITY AS k (sender, ord)
        LEFT JOIN (
            SELECT c.sender, sum(c.count)::int AS cnt FROM outbound_counts AS c
            WHERE c.sender = ANY (p_keys) AND c.bucket >= p_since GROUP BY c.sender
        ) AS s ON s.sender = k.sender;
    added := array_fill(0, ARRAY[coalesce(array_length(p_keys, 1), 0)]);
    WHILE i <= n LOOP
        j := i;
        pos := 0;
        hit := 0;
        seen := 0;
        WHILE j <= n AND p_request[j] = p_request[i] LOOP
            pos := pos + 1;
            IF hit = 0 AND totals[p_key[j]] >= p_limit[j] THEN
                hit := pos;
                seen := totals[p_key[j]];
            END IF;
            j := j + 1;
        END LOOP;
        IF hit = 0 THEN
            FOR m IN i .. j - 1 LOOP
                totals[p_key[m]] := totals[p_key[m]] + 1;
                added[p_key[m]] := added[p_key[m]] + 1;
                seen := greatest(seen, totals[p_key[m]]);
            END LOOP;
        END IF;
        first_full := first_full || hit;
        seen_total := seen_total || seen;
        i := j;
    END LOOP;
    INSERT INTO outbound_counts (sender, bucket, count)
        SELECT k, p_bucket, a FROM unnest(p_keys, added) AS t (k, a) WHERE a > 0 ORDER BY k
        ON CONFLICT (sender, bucket) DO UPDATE SET count = outbound_counts.count + excluded.count;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS outbound_admit(text[], int[], int[], int[], timestamptz, timestamptz)")
