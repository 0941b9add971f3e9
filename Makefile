# Two commands on a fresh machine: `make demo` (dagster dev on the bundled demo) and `make test`.
PY ?= python3
VENV := .venv
TORCH ?= 2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help demo test test-fast lint docs dist bench bench-bookkeeping bench-captioning bench-api bench-pixels bench-tagging bench-embeddings clean bench-ingest bench-convert bench-watch

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned to a build we know: with none installed, a bare "torch>=2.6" may pull a multi-GB wheel.
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet torch==$(TORCH)
	$(BIN)/pip install --quiet -e '.[dev,pixels]'
	# spandrel without its torchvision requirement (model Upscale; see the pixels extra in pyproject.toml).
	$(BIN)/pip install --quiet --no-deps spandrel==0.4.2
	touch $(STAMP)

demo: $(STAMP)  ## start dagster dev on the bundled demo (http://127.0.0.1:3000)
	$(BIN)/beprepared dev

test: $(STAMP)  ## run the whole test suite (unit, in-process Dagster, end-to-end dagster dev)
	$(BIN)/pytest -q

test-fast: $(STAMP)  ## skip the slow and end-to-end tests
	$(BIN)/pytest -q -m "not slow and not e2e"

lint: $(STAMP)  ## ruff lint + format check
	$(BIN)/ruff check beprepared_dagster beprepared_dagster_tests bench
	$(BIN)/ruff format --check beprepared_dagster beprepared_dagster_tests bench

docs: $(STAMP)  ## build the documentation site into site/ (strict; node reference generated from the code)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

dist: $(STAMP)  ## build the sdist and the wheel into dist/ (offline: uses the installed setuptools)
	$(BIN)/python -m build --no-isolation --outdir dist

bench: $(STAMP)  ## pipeline benchmark (prints figures; N=2000 by default)
	$(BIN)/python bench/bench_pipeline.py

bench-bookkeeping: $(STAMP)  ## Dagster bookkeeping per (stage, image), N=2000/10000, 100k scale (~20 min)
	$(BIN)/python bench/bench_bookkeeping.py

bench-ingest: $(STAMP)  ## cold / unchanged / +10 ingest of 5,000 JPEGs vs a plain loop; ORIGINAL=python: side by side (~10 min)
	$(BIN)/python bench/bench_ingest.py $(if $(ORIGINAL),--original $(ORIGINAL))

bench-watch: $(STAMP)  ## under dagster dev: 10 new files landing -> exported, 5,000 images in the workspace (~3 min)
	$(BIN)/python bench/bench_watch.py

bench-convert: $(STAMP)  ## ConvertFormat("PNG") on 300 1600x1200 photos vs plain loops (~3 min)
	$(BIN)/python bench/bench_convert.py

bench-captioning: $(STAMP)  ## captioning runtime vs a plain generate loop (tiny LLaVA on the CPU)
	$(BIN)/python bench/bench_captioning.py

bench-api: $(STAMP)  ## API captioning vs a plain asyncio loop, fake server with a 50 ms answer (~1 min)
	$(BIN)/python bench/bench_api_captioning.py

bench-pixels: $(STAMP)  ## pixel model nodes: Anonymize and model Upscale (CPU; --gpu on a GPU machine)
	$(BIN)/python bench/bench_pixels.py

bench-tagging: $(STAMP)  ## WDTagger / NudeNet tags/s vs a plain loop of the same calls, CPU (bench/RESULTS-tagging.md)
	$(BIN)/python bench/bench_tagging.py

bench-embeddings: $(STAMP)  ## ClipEmbed embeddings/s vs a plain loop of the same calls, CPU (--gpu: ViT-L/14 vs DataParallel)
	$(BIN)/python bench/bench_embeddings.py

clean:  ## remove the virtualenv and the demo workspace
	rm -rf $(VENV) workspace site dist
