"""How to run: data, training, configs, the ``effnas`` CLI, the result store and reports."""
