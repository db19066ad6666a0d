"""What orchestrates the alarmer apart from its handlers: the reminder sweep."""
