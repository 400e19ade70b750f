"""The ops web page of the composition root (served by `abuse-desk serve web` and by `run`)."""
