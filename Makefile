# Two commands on a fresh machine (see README):
#   make demo   install into .venv and run the weekly job on the demo data -> out/
#   make test   install into .venv with test extras and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
OUT    ?= out

.PHONY: demo test install bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv
	$(VENV)/bin/uv pip install --quiet --python $(VENV)/bin/python -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/sitewatch demo --out $(OUT)

test: install
	$(VENV)/bin/python -m pytest -q -ra

bench: install
	$(VENV)/bin/python benchmarks/bench_core.py
	$(VENV)/bin/python benchmarks/bench_core.py --rgb
	$(VENV)/bin/python benchmarks/bench_core.py --radar
	$(VENV)/bin/python benchmarks/bench_incremental.py
	$(VENV)/bin/python benchmarks/bench_incremental.py --years
	$(VENV)/bin/python benchmarks/bench_memory.py
	$(VENV)/bin/python benchmarks/bench_parts.py
	$(VENV)/bin/python benchmarks/bench_many_sites.py
	$(VENV)/bin/python benchmarks/injection.py --events 40
	$(VENV)/bin/python benchmarks/short_history.py
	$(VENV)/bin/python benchmarks/whole_scene.py
	$(VENV)/bin/python benchmarks/distractors.py --fields 20
	$(VENV)/bin/python benchmarks/radar_simulation.py --series 20
