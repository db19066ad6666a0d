"""The packaged Jinja2 templates of notifications (`alarm.txt.j2`, `alarm.html.j2`); users may override."""
