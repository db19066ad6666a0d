"""SQL migrations of the `reporter` schema, applied in file-name order by `shared.db.migrate`."""
