# The two commands a user needs: `make demo` (sets everything up, then renders samples/out/demo.mp4)
# and `make test` (sets everything up, including the browser used by the app test, then runs the tests).
PY := .venv/bin/python

.PHONY: setup demo test clean
.venv/.installed: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $@

setup: .venv/.installed

.venv/.browser: .venv/.installed
	bash scripts/setup.sh --browser
	touch $@

demo: setup
	$(PY) samples/make_samples.py
	$(PY) -m studio say --face samples/face.png --text "Hello! I never said this, but now I do." \
		--save-audio samples/out/demo.wav -o samples/out/demo.mp4

test: .venv/.browser
	$(PY) -m pytest -q --durations=10 tests

clean:
	rm -rf samples/out .pytest_cache
