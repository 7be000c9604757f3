"""Test support: the one Telegram test double (:mod:`.bot_api`, :mod:`.transport`, :mod:`.loopback`, :mod:`.launcher`)."""
