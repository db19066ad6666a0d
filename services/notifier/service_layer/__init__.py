"""What orchestrates the notifier apart from its handler: making a delivery and recording its outcome, and the
retry sweep that tries again the deliveries the delivery log holds."""
