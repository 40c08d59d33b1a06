"""Allow ``python -m voiceagent``."""

from voiceagent.cli import main

main()
