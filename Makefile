# `make test` and `make demo` are self-contained: they create .venv, install, and run.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
export RAY_USAGE_STATS_ENABLED ?= 0

.PHONY: install test demo finetune-demo lint typecheck schema bench chromium clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: an unpinned torch would pull the CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[all,dev]'
	touch $(STAMP)

install: $(STAMP)

# Debian's chromium for the real headless-browser test (Playwright's own download does not work here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium could not be installed; the browser test will be skipped"; \
	  else echo "chromium not found and cannot apt-get; the browser test will be skipped"; fi; }

test: install chromium
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

# The main job on the bundled synthetic corpus: GPT4All's recipe on OIG + Stack Overflow + P3, then
# Vicuna's ShareGPT cleaning and Alpaca's rules on their demo files. Runs land in runs/demo/<recipe>/.
demo: install
	$(BIN)/curate demo-data $(DEMO_DIR)/raw
	$(BIN)/curate run pipelines/gpt4all.yaml --runs-root runs/demo \
	  --set sources.oig.path=$(DEMO_DIR)/raw/oig/unified_chip2.jsonl \
	  --set sources.stackoverflow.path=$(DEMO_DIR)/raw/stackoverflow/Posts.xml \
	  --set sources.p3.path=$(DEMO_DIR)/raw/p3/p3.jsonl \
	  --set steps.write_hub_dataset.params.path=$(DEMO_DIR)/export
	$(BIN)/curate run pipelines/vicuna.yaml --runs-root runs/demo \
	  --set sources.sharegpt.path=$(DEMO_DIR)/raw/sharegpt/sharegpt.json \
	  --set steps.write_hub_dataset.params.path=$(DEMO_DIR)/export-vicuna
	$(BIN)/curate run pipelines/alpaca.yaml --runs-root runs/demo \
	  --set sources.alpaca.path=$(DEMO_DIR)/raw/alpaca/alpaca.json \
	  --set steps.write_hub_dataset.params.path=$(DEMO_DIR)/export-alpaca
	@echo
	@echo "browse the main run:  $(BIN)/curate browse runs/demo/gpt4all/latest"
	@echo "exported dataset:     $(DEMO_DIR)/export  (load with datasets.load_dataset('$(DEMO_DIR)/export'))"

schema: install
	$(BIN)/python -m curate.schema > schemas/conversation.schema.json

lint: install
	$(BIN)/ruff check curate tests bench app.py

typecheck: install
	$(BIN)/mypy curate

clean:
	rm -rf runs demo .pytest_cache

# LoRA fine-tune of a tiny local Llama on the demo export (run `make demo` first): CPU-sized overrides of the
# A100 config; the real recipe is pipelines/finetune/lora-a100.yaml with --base-model <7-8B model> (docs/finetune.md).
# Then the rest of the GPT4All loop (docs/eval.md): held-out perplexity of base vs LoRA, the merged model as a Q8_0
# GGUF (the tiny MLP is 192 wide so every row quantises in blocks of 32) answering in GPT4All's own bindings, and
# an F16 file checked against the merged model in transformers (logits) and in gpt4all (greedy answer).
finetune-demo: install
	@test -d $(DEMO_DIR)/export/data || { echo "no $(DEMO_DIR)/export: run 'make demo' first"; exit 2; }
	@ls $(DEMO_DIR)/export/data/validation-*.parquet >/dev/null 2>&1 || { echo "$(DEMO_DIR)/export has no \
	  validation split to evaluate on: export with --splits train=0.95,validation=0.05"; exit 2; }
	$(BIN)/python -m curate.train.tiny $(DEMO_DIR)/tiny-llama --corpus $(DEMO_DIR)/export --intermediate-size 192
	rm -rf $(DEMO_DIR)/finetune
	$(BIN)/curate finetune $(DEMO_DIR)/export --config pipelines/finetune/lora-a100.yaml \
	  --base-model $(DEMO_DIR)/tiny-llama --output $(DEMO_DIR)/finetune --max-steps 30 --gguf q8_0 \
	  --set train.bf16=false --set train.gradient_checkpointing=false --set data.max_seq_len=512 \
	  --set train.micro_batch_size=4 --set train.grad_accum_steps=2 --set train.learning_rate=2e-3 \
	  --set train.logging_steps=5 --set train.save_steps=10 --set data.max_convs=2000 --set train.max_eval_convs=64
	$(BIN)/curate eval --base $(DEMO_DIR)/tiny-llama --adapter demo=$(DEMO_DIR)/finetune --data $(DEMO_DIR)/export \
	  --max-convs 64 --max-seq-len 512 --output $(DEMO_DIR)/finetune/eval
	printf 'How do I reverse a list in Python?\n/exit\n' | \
	  $(BIN)/curate chat $(DEMO_DIR)/finetune/model-q8_0.gguf --temperature 0 --max-new-tokens 24
	$(BIN)/curate export-model $(DEMO_DIR)/finetune --gguf f16 -o $(DEMO_DIR)/finetune/model-f16.gguf --check
