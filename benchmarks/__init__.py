"""Benchmarks of convlstm_lib against a plain reference and Keras: ``python -m benchmarks.run``."""
