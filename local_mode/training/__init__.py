"""Training jobs of the local emulator: request → spec → runner → backend."""
