"""The alarmer's rules, pure: the alarm state machine, ownership, and the events that announce a transition."""
