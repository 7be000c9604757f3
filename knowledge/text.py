"""French text normalisation shared by the matcher and the option recogniser."""

from __future__ import annotations

import re
import sys
import unicodedata
from functools import lru_cache
from pathlib import Path

import snowballstemmer

_ELISION = re.compile(r"\b(?:l|d|j|m|n|s|t|c|qu|jusqu|lorsqu|puisqu)['’`´]")
_NON_WORD = re.compile(r"[^a-z0-9]+")
_STEMMER = snowballstemmer.stemmer("french")

#: Common French function words; the lexicon file may add more.
BASE_STOPWORDS = frozenset(
    """
    a au aux avec ce ces cet cette dans de des du elle elles en et est etre eu il ils je la le les leur
    leurs lui ma mais me meme mes moi mon ne nos notre nous on ou par pas pour qu que qui sa se ses son
    sur ta te tes toi ton tu un une vos votre vous y c d j l m n s t ca cela ceci sont ete etait sera
    fait faire faut peut peuvent quoi quel quelle quels quelles comment pourquoi quand combien est-ce
    ai as avons avez ont suis es sommes etes si plus tres bien aussi donc alors comme tout tous toute
    toutes autre autres entre chez sous vers y-a il-y-a ya svp stp merci bonjour salut hello
    voudrais voudrait veux veut aimerais savoir dire expliquer explique expliquez besoin question
    moi-meme puis dont ici la-dessus cest quest
    """.split()
)


def strip_accents(text: str) -> str:
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


# A turn normalises the same few texts many times (the message, phrases of the word lists).
@lru_cache(maxsize=8192)
def normalise(text: str) -> str:
    """Lower-case, accent-free, elisions removed, words separated by single spaces."""
    text = strip_accents(text.casefold()).replace("œ", "oe").replace("æ", "ae")
    text = _ELISION.sub(" ", text)
    return " ".join(_NON_WORD.sub(" ", text).split())


@lru_cache(maxsize=50_000)
def stem(word: str) -> str:
    return _STEMMER.stemWord(word)


def stemmer_identity() -> str:
    """Which Snowball implementation stems (PyStemmer's C one, or the pure-Python one), and which build."""


    module = sys.modules.get(type(_STEMMER).__module__)
    path = Path(getattr(module, "__file__", "") or "")
    try:
        stamp = f"{path.stat().st_size}-{path.stat().st_mtime_ns}"
    except OSError:
        stamp = "?"
    return f"{type(_STEMMER).__module__}.{type(_STEMMER).__qualname__} {path.name} {stamp}"
