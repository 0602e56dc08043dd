# Benchmarks (issue 8). Included from the Makefile with `-include bench/bench.mk`.
# make bench                                  the suite end to end, open loop, vs the bare ceiling
# make bench BENCH_RATE=1000 BENCH_DURATION=60  BENCH_* variables (command line or environment) set the load
# make bench BENCH_SOAK=1                     10 minutes at a moderate rate; RSS growth per process
# make bench-max                              the highest sustainable rate (whole runs at rising rates)
# make bench-core                             the routing core alone (events per second)

OMNI_BENCH_CORE := services/routing/omnirouter_routing/simulate/bench_core.py

.PHONY: bench bench-max bench-core

bench: venv ## the whole suite under load: webhook->offer latency, lost/duplicated, CPU/RSS, vs the bare ceiling
	$(PY) -m bench.run

bench-max: venv ## the highest sustainable rate: runs from BENCH_RATE, doubling, then bisecting (bench/results/max.json)
	$(PY) -m bench.find_max

bench-core: venv ## the routing core alone, without I/O (events per second)
	@if [ -f $(OMNI_BENCH_CORE) ]; then \
	  $(PY) -m omnirouter_routing.simulate.bench_core $(ARGS); \
	else \
	  echo "$(OMNI_BENCH_CORE) is not there yet: the routing core's benchmark comes with the routing service"; exit 1; \
	fi
