"""Export formats written by Save."""
