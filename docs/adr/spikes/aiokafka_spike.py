import asyncio, os, time, json
from collections.abc import Sequence
from aiokafka import AIOKafkaProducer
from omnirouter_shared.kafka import ConsumerLoop, EventProducer, Consumed, Rejection
from omnirouter_shared.kafka.admin import ensure_topics
from omnirouter_shared.settings import ServiceSettings

BS = os.environ["BS"]
N = int(os.environ.get("N", "20000"))
RUN = os.environ.get("RUN", "1")


async def main():
    s = ServiceSettings(kafka_bootstrap_servers=BS, topic_prefix=f"ak{RUN}.", kafka_rebalance_timeout_ms=1000)
    await ensure_topics(BS, prefix=f"ak{RUN}.", partitions_override=4)
    prod = EventProducer(s)
    await prod.start()
    p = AIOKafkaProducer(bootstrap_servers=BS, acks="all")
    await p.start()
    state = {}
    done = asyncio.Event()
    t0 = [None]
    n = [0]

    async def handler(batch: Sequence[Consumed]) -> Sequence[Rejection]:
        if t0[0] is None:
            t0[0] = time.perf_counter()
        out = []
        for c in batch:
            d = json.loads(c.value)
            state[d["k"]] = state.get(d["k"], 0) + 1
            out.append(("omni.routing.decisions", d["k"], c.value, None))
        await prod.send_raw_many(out)
        n[0] += len(batch)
        if n[0] >= N:
            done.set()
        return []

    loop = ConsumerLoop(
        s, topics=["omni.routing.inbox"], group_id="g", handler=handler, producer=prod, decode=False
    )
    await loop.start()
    futs = [
        await p.send(f"ak{RUN}.omni.routing.inbox", json.dumps({"k": f"c{i % 100}", "i": i}).encode())
        for i in range(N)
    ]
    await asyncio.gather(*futs)
    await done.wait()
    dt = time.perf_counter() - t0[0]
    print(f"AIOKAFKA loop processed {n[0]} in {dt:.2f}s = {n[0] / dt:.0f}/s")
    await loop.stop()
    await prod.stop()
    await p.stop()


asyncio.run(main())
