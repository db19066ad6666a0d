"""SQL migrations of the `scanner` schema, applied in file-name order by `shared.db.migrate`."""
