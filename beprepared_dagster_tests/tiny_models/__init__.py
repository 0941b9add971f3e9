"""Tiny random checkpoints of the real model architectures, built offline by session-scoped fixtures."""
