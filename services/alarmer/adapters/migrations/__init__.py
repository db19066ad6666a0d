"""SQL migrations of the `alarmer` schema, applied in file-name order by `shared.db.migrate`."""
