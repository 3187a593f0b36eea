"""Measuring only, never imported by core/, export/ or ros/: speech folders, scores, engines and their statistics,
memory and machine figures, long recordings, captioning, soak runs, and the one launcher of the ROS processes."""
