"""Fiji / ImageJ access. The JVM lives in a child process; only ``imagej_bridge.worker`` imports
scyjava/jpype/imagej, and nothing here imports torch or Qt."""
