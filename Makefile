# Shortcuts; the scripts are the source of truth.
.PHONY: setup test unit sanity lint integration fleet molecule demo bench reliability clean

setup:
	scripts/bootstrap.sh
test:
	scripts/test.sh
unit sanity lint integration fleet molecule:
	scripts/test.sh $@
demo:
	scripts/demo.sh
bench:
	benchmarks/run.sh
# docs/reliability.md from the last test run's reports (run `make test` first).
reliability:
	python3 scripts/reliability_report.py --out docs/reliability.md
clean:
	rm -rf build tests/output
