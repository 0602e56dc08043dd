"""agent-presence's metrics: the closed set of names this service exports (besides the shared ones)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

DESKTOPS_CONNECTED = Gauge("omni_presence_desktops_connected", "Open desktop WebSockets on this replica")
FRAMES_PUSHED = Counter("omni_presence_frames_pushed_total", "Frames sent to desktops", ["type"])
COMMANDS = Counter("omni_presence_commands_total", "Desktop commands handled", ["command", "outcome"])
WEBHOOK_ATTEMPTS = Counter("omni_presence_webhook_attempts_total", "Webhook delivery attempts", ["outcome"])
AGENTS_TIMED_OUT = Counter(
    "omni_presence_heartbeat_timeouts_total", "Agents set offline after the grace period"
)
