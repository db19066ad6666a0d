"""The notifier: tells owners about alarms by email (and later SNMP and webhooks), with a delivery log."""
