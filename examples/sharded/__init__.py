"""A sharded controller run as several processes against one API server: see :mod:`.main`."""
