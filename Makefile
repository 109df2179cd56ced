# Shortcuts; the scripts are the source of truth.
.PHONY: setup test unit sanity lint integration molecule demo bench clean

setup:
	scripts/bootstrap.sh
test:
	scripts/test.sh
unit sanity lint integration molecule:
	scripts/test.sh $@
demo:
	scripts/demo.sh
bench:
	benchmarks/run.sh
clean:
	rm -rf build tests/output
