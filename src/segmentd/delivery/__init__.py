"""Delivering change events: the worker loop (``segmentd events``) and its sinks."""
