# Faults under load (issue 9). Included from the Makefile with `-include chaos/chaos.mk`.
# make chaos         every fault in turn (kill -9 each service, two instances with one killed, broker
#                    paused 10 s, PostgreSQL restarted, desktops' WebSockets cut); report in chaos/results/
# make chaos-short   the CI subset (kill -9 routing, kill -9 channel-gateway, broker pause, WebSocket cut),
#                    under 3 minutes; part of make test
# CHAOS_FAULTS=a,b CHAOS_RATE=8 CHAOS_AGENTS=8 CHAOS_PAUSE_S=10 select and size the run.

.PHONY: chaos chaos-short

chaos: venv ## faults under load, invariants checked after each (chaos/results/latest.json)
	$(PY) -m chaos.run

chaos-short: venv ## the CI subset of make chaos (< 3 minutes)
	CHAOS_SHORT=1 $(PY) -m chaos.run

.PHONY: audit
audit: venv ## pip-audit of the locked dependencies (says so and passes when the database is unreachable)
	UV=$(UV) $(PY) -m chaos.audit
