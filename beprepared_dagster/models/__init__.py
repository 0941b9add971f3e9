"""The shared runtime for local models: Dagster-free and Gradio-free, and torch / transformers are imported
only inside the functions that need them (importing this package costs nothing).

- `api`      the contract between model nodes and the runtime: `ModelSpec`, `ResolvedModel`, `DeviceSettings`,
             `WorkItem`, `ItemError`, and `Backend` (one loaded model on one device).
- `loading`  hub id or local folder → `ResolvedModel`; offline / missing models fail with the id, the cache
             folder looked in, and the command that downloads it.
- `devices`  which devices and dtype to use (every visible GPU, `devices=[…]`, else the CPU with one warning).
- `runtime`  batches work items through a backend: images decoded on a thread pool while the device works,
             out-of-memory back-off, results handed back per batch, progress.
- `workers`  several devices: one worker process per device over one queue of batches.
"""
