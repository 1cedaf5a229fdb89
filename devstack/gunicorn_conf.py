"""gunicorn's settings for percel's API server (docs/DECISIONS.md#production-server).

Read by `gunicorn --config python:devstack.gunicorn_conf`; the environment can resize it.
Settings: https://docs.gunicorn.org/en/stable/settings.html
"""
import os

# gthread (with bounded reads: devstack/gunicorn_worker.py): the sync worker closes every
# connection after one response (no keep-alive), and the app waits on Redis and the bucket,
# which threads overlap. One process per core runs the Python; the threads cover the waits
# (bench/README.md, "production-server", docs/DECISIONS.md#production-server).
worker_class = os.environ.get("WEB_WORKER_CLASS") or "devstack.gunicorn_worker.BoundedThreadWorker"
workers = int(os.environ.get("WEB_WORKERS") or os.cpu_count() or 1)
threads = int(os.environ.get("WEB_THREADS") or 4)
# Seconds an idle keep-alive connection stays open.
keepalive = int(os.environ.get("WEB_KEEPALIVE") or 5)
# Access log off (the app logs what matters); gunicorn's own messages go to the service log.
accesslog = None
errorlog = "-"
# gunicorn's control socket sits at one path per user (~/.gunicorn/gunicorn.ctl): several stacks
# on one machine (the tests start many) would take it from each other, and nothing here uses it.
control_socket_disable = True
# Seconds in-flight requests get after SIGTERM: inside the 5 s devstack's Service.stop allows
# before SIGKILL, which would leave the workers behind their dead master.
graceful_timeout = 4
