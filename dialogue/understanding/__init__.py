"""Free text → what the user meant.

``reading`` (pure, shared with ``ptce-bot ask``) reads a message in order: spelling, small
talk, what is named, gaps, follow-ups, glossary, the matcher's topic; ``answers`` (the
engine's side) turns its decision into replies. Kept light on purpose: importing
``dialogue.understanding.reading`` must not load the engine.
"""
