"""object_gauge: a gauge series per ConfigMap that goes away with the ConfigMap (see ``main.py``)."""
