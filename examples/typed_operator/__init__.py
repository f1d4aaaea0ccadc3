"""A typed operator: the ``Website`` custom resource as a pydantic model (see ``main.py``)."""
