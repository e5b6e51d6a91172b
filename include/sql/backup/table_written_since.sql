-- backup/table_written_since.sql
-- purpose: for one table of public, in the caller's snapshot: its rows, and how many of them
--          were written (inserted, or updated: an update writes a new row version) by a
--          transaction at or after %(horizon)s, the pg_snapshot_xmin of an earlier snapshot.
--          With the same table set, the same row counts and no such row, the table holds
--          exactly what it held in that snapshot (a delete alone lowers the count). xmin is a
--          32-bit xid: it is widened to the 64-bit xid8 of the current epoch (or the previous
--          one when it is above the current xid's low half); freezing keeps the raw xmin.
--          Rows the conversion misjudges can only count as written, never hide a write.
-- inputs: {table} (identifier), %(horizon)s (xid8 as text).
-- idempotent: a read-only query.
select count(*)::bigint as total_rows,
       count(*) filter (
           where ((case when t.xmin::text::bigint <= (n.next_xid & 4294967295)
                        then n.next_xid >> 32
                        else (n.next_xid >> 32) - 1
                   end) << 32) + t.xmin::text::bigint
                 >= %(horizon)s::xid8::text::bigint
       )::bigint as written_rows
from {table} as t
cross join (select pg_snapshot_xmax(pg_current_snapshot())::text::bigint as next_xid) as n
