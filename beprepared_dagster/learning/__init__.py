"""Learning from a person's labels: small classifiers on image embeddings, their held-out evaluation and
thresholds. Dagster-free and Gradio-free; torch is imported only to train."""
