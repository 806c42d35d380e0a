"""cartlib: loading, validation, derivation, statistics, tables and plots for CAR-T outcome studies.

The notebooks in ``notebooks/`` call only this package; see docs/ARCHITECTURE.md.
"""
__version__ = "0.1.0"
