# The two quick-start commands: `make demo` (the main job) and `make test` (the test suite).
# Both install the system tools they need first.

CARGO ?= cargo

.PHONY: demo demo-full test deps bench fmt lint

deps:
	@scripts/install-deps.sh

demo: deps
	$(CARGO) run --release --bin shiftkit -- demo --out demo-out

demo-full: deps
	$(CARGO) run --release --bin shiftkit -- demo --full --out demo-out

test: deps
	$(CARGO) test --workspace

bench:
	$(CARGO) bench --bench gemm

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
