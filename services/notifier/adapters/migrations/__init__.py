"""SQL migrations of the `notifier` schema, applied in file-name order by `shared.db.migrate`."""
