"""Experiment configs: ``<family>_<data>.py`` files, each with ``get_config()``."""
