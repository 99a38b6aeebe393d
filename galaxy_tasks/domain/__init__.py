"""Pure domain code: no I/O, no Celery, no clients — only values and rules."""
