"""Moving in: other platforms' archives brought onto this site (see docs/moving-in.md).

Each source is a subpackage split the way Ghost's migrate tools split theirs:
reading (stream the export), converting (pure functions a fixture test calls),
writing (idempotent by `(source, kind, source_id)`, one `ImportReport`).
"""
