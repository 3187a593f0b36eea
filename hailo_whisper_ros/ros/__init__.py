"""rclpy node shells over the core: the nodes, the topics and their message contracts, parameters made from the
core's option declarations, diagnostics, and the shared main of the executables."""
