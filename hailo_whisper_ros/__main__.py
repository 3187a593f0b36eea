import sys

from hailo_whisper_ros.cli.main import main

sys.exit(main())
