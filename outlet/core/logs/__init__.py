"""What every log line carries and what none may carry.

- `context`: the request, task, issue and donation a line is about (contextvars, bound by
  the request-id middleware, Celery's task signals and `log_context` in services), added
  to every record by `LogContextFilter`.
- `scrubbing`: addresses, Stripe keys and tokens in links redacted from every record
  (`ScrubFilter`) and from every Sentry event (`sentry_event_scrub`), as defence in depth:
  the code logs ids and digests, never these.
- `request_id`: X-Request-ID taken when sane, else made, and echoed on the response.
- `sentry`: error reporting, set up only when SENTRY_DSN is set.
- `gunicorn`: gunicorn's own access and error lines, scrubbed (deploy/gunicorn.conf.py).
"""
