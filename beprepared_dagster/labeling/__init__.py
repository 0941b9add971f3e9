"""The Gradio labeling app (human stages) — arrives with the human nodes."""
