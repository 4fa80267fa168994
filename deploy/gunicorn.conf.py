# gunicorn's settings for outlet's web process: `gunicorn -c deploy/gunicorn.conf.py outlet.wsgi`
# (`make serve` and `manage.py runstack --production` use it). Flags on the command line
# (--bind, --workers) override what is set here.
#
# prometheus-client's multiprocess mode: a worker that exits (a restart, a crash,
# max_requests) is marked dead so its live gauges stop counting; see docs/operations.md.


import os

# Access and error lines scrubbed like the site's (a sign-in link's path holds its token).
logger_class = "outlet.core.logs.gunicorn.ScrubbingLogger"


def child_exit(server, worker):
    # Runs in gunicorn's master, which has not loaded the site (no --preload): the
    # settings name the metrics directory.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outlet.settings")
    from outlet.core.metrics.files import process_mark_dead

    process_mark_dead(pid=worker.pid)
