"""shared_reflector: two controllers fed by one watch and one cache (see ``main.py``)."""
