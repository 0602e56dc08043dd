"""Weighted per-channel capacity: the one place that decides whether an agent can take one more task."""

from __future__ import annotations

from omnirouter_routing.config import CapacityConfig
from omnirouter_routing.core.state import Agent
from omnirouter_shared.contracts.agents import AgentKind
from omnirouter_shared.contracts.common import Channel


def channel_max(agent: Agent, channel: Channel, cfg: CapacityConfig) -> int:
    if agent.capacity:
        return agent.capacity.get(channel, 0)
    return cfg.default_per_channel.get(channel, 0)


def has_room(agent: Agent, channel: Channel, cfg: CapacityConfig) -> bool:
    """Room for one more ``channel`` task: under the channel maximum, under the weighted units (humans:
    a bot's capacity is its per-channel maxima only) and not blocked by a channel it already holds."""
    if agent.per_channel.get(channel, 0) >= channel_max(agent, channel, cfg):
        return False
    if agent.kind is AgentKind.HUMAN and agent.used_units + cfg.weight(channel) > cfg.units:
        return False
    if cfg.blocks:
        for held, count in agent.per_channel.items():
            if count and channel in cfg.blocks.get(held, ()):
                return False
    return True


def has_any_room(agent: Agent, cfg: CapacityConfig) -> bool:
    if agent.kind is AgentKind.HUMAN and agent.used_units >= cfg.units:
        return False
    channels = agent.capacity or cfg.default_per_channel
    return any(has_room(agent, c, cfg) for c in channels)


def charge(agent: Agent, channel: Channel, units: int) -> None:
    agent.used_units += units
    agent.per_channel[channel] = agent.per_channel.get(channel, 0) + 1


def release(agent: Agent, channel: Channel, units: int) -> None:
    agent.used_units -= units
    left = agent.per_channel.get(channel, 0) - 1
    if left > 0:
        agent.per_channel[channel] = left
    else:
        agent.per_channel.pop(channel, None)
