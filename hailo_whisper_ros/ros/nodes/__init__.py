"""The node executables: one node per module, and speech_recognition composing three in one process."""
