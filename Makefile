.PHONY: run test setup lint

setup:
	scripts/setup

run: setup
	.venv/bin/crowdlab serve

test:
	scripts/setup --browsers
	scripts/test

lint:
	.venv/bin/ruff check app workers aggregation model tests bench
