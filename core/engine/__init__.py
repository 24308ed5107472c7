"""The training engine: runs any task's steps on a device with a schedule, precision and callbacks."""
