"""The `hailo-whisper` command: main.py dispatches to one module per subcommand; flags.py and targets.py are shared."""
