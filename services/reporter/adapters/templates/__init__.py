"""Jinja2 templates of the daily report and the dashboard (a package so wheels ship them)."""
