"""Action stage: carry out commands (suspend, lift, notify) idempotently and publish what happened."""
