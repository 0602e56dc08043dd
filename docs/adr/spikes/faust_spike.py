"""Spike: throughput and latency of a faust-streaming agent with a changelog-backed table on Tansu."""

import asyncio, os, sys, time, json
import faust

BS = os.environ["BS"]
app = faust.App(
    "spike-%s" % os.environ.get("RUN", "1"),
    broker=f"kafka://{BS}",
    store="memory://",
    broker_rebalance_timeout=3.0,
    broker_session_timeout=6.0,
    broker_heartbeat_interval=0.5,
    topic_partitions=4,
    web_enabled=False,
    producer_acks=-1,
    processing_guarantee="at_least_once",
)
src = app.topic("spike-in-%s" % os.environ.get("RUN", "1"), value_serializer="raw", partitions=4)
out = app.topic("spike-out", value_serializer="raw")
table = app.Table("spike-state", default=int, partitions=4)
N = int(os.environ.get("N", "20000"))
state = {"n": 0, "t0": None}


@app.agent(src)
async def route(stream):
    async for value in stream:
        if state["t0"] is None:
            state["t0"] = time.perf_counter()
        d = json.loads(value)
        table[d["k"]] += 1
        await out.send(value=value)
        state["n"] += 1
        if state["n"] == N:
            dt = time.perf_counter() - state["t0"]
            print(f"FAUST processed {N} in {dt:.2f}s = {N / dt:.0f}/s", flush=True)
            os._exit(0)


@app.task
async def feed():
    from aiokafka import AIOKafkaProducer

    p = AIOKafkaProducer(bootstrap_servers=BS, acks="all")
    await p.start()
    t = time.perf_counter()
    futs = [
        await p.send(
            "spike-in-%s" % os.environ.get("RUN", "1"), json.dumps({"k": f"c{i % 100}", "i": i}).encode()
        )
        for i in range(N)
    ]
    await asyncio.gather(*futs)
    print("fed", time.perf_counter() - t, flush=True)


if __name__ == "__main__":
    t = time.perf_counter()
    print("start", flush=True)
    app.main()
