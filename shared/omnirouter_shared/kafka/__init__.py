"""Kafka plumbing: a producer that waits for acks=all, a consumer loop that commits after effects and
dead-letters poison messages, and topic administration from the registry."""

from omnirouter_shared.kafka.consumer import Consumed, ConsumerLoop, Rejection
from omnirouter_shared.kafka.producer import BrokerUnavailable, EventProducer

__all__ = ["BrokerUnavailable", "Consumed", "ConsumerLoop", "EventProducer", "Rejection"]
