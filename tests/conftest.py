"""Suite-wide set-up. CrewAI's telemetry switches must be set before anything imports crewai."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("CREWAI_TESTING", "true")
os.environ.setdefault("CREWAI_STORAGE_DIR", tempfile.mkdtemp(prefix="ailink-crewai-storage-"))
# The suite talks to loopback only: never to a real provider through a stray key.
os.environ.pop("OPENAI_API_KEY", None)

pytest_plugins = ["ailink.testing"]
