"""percel's shared library: everything app.py and the build runner have in common."""
