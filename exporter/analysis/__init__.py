"""The accuracy analyses: per-layer sensitivity and the sparsity × order sweep (records in ``records``)."""
