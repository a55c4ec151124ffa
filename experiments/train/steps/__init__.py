"""The steps of one training run (``train.loop.train`` runs them in order): setup, resume state, one
epoch, evaluation, checkpoint, metrics, progress."""
