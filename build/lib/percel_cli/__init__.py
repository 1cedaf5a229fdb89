"""The `percel` command: deploy a folder or a repository to a percel server, and manage it.

Standard library only, and it never imports the server's code (chalicelib, boto3, redis, git),
so it starts fast and installs anywhere Python 3.11 runs.
"""
__version__ = "0.1.0"
