"""Defaults every command shares, so that two commands left at their defaults agree."""

DEFAULT_SEED = 42  # sampling, shuffles, splits and LoRA init: one number a user can change everywhere
PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # the one vocabulary for weights' precision on the command line
