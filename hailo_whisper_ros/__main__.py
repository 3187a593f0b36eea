import sys

from hailo_whisper_ros.cli import main

sys.exit(main())
