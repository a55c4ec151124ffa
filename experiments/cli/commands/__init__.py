"""One module per ``effnas`` sub-command; each defines ``register(subparsers)``."""
