.PHONY: demo test setup
demo:
	scripts/demo.sh
test:
	scripts/test.sh
setup:
	scripts/setup.sh
