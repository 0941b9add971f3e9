"""Backends: how one model family runs on one device (see `models.api.Backend`)."""
