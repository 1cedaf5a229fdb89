"""The local stack: real Redis, a real S3 endpoint, `chalice local` and build runners.

Used by `make run` (devstack/__main__.py) and by the test suite's fixtures, so
the tests run against exactly what a developer runs.
"""
