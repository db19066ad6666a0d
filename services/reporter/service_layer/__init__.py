"""The reporter's service layer: what orchestrates history, rules, rendering and the bucket (publishing a report
once per period across replicas) and the loop that publishes the daily report on schedule."""
