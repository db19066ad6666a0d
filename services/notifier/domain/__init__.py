"""The notifier's rules, pure: which deliveries an alarm event makes and how failed ones are retried."""
