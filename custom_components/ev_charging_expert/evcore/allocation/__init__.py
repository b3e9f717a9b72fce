"""The allocator: a pure function from a site snapshot to a setpoint per connector."""
