"""The build runner: pops jobs from Redis and builds them in a sandbox."""
