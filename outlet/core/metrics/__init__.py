"""
Metrics for Prometheus at /metrics (docs in README's production section and
deploy/prometheus/).

- `instruments`: counters and histograms of what happens in a process (messages
  sent, webhooks applied, clicks buffered, Celery tasks), written in
  prometheus-client's multiprocess mode so gunicorn's and Celery's processes add up.
- `gauges`: the state of the business, read from the database and the broker at
  scrape time (deliveries per issue, paused issues, donor emails waiting, queue depth).
- `access`: METRICS_ALLOW, who may read them.
- `views`: the endpoint itself.

Labels stay bounded: statuses, queues, task names, event types, and the ids of a few
recent issues; never a reader, an address or a donation.
"""
