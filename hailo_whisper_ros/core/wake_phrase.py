"""The wake-phrase gate: does a final transcript begin with one of the robot's wake phrases, and what follows it.

Whisper writes a spoken "hey robot" as "Hey robot," or "hey, robot" or "Hey Robo." or "Hero bot", so phrases and
transcripts are compared after the one normalisation of spoken text (``core/text.py``: case, punctuation and
whitespace), and by the letters of whole words with the spaces left out (a word split or merged in two costs
nothing), within an edit budget per phrase: ``floor(max_edit_ratio * letters of the phrase)`` character edits
(Levenshtein). The transcript's side is always whole leading words, from one word up to one more than the phrase has,
so that:

- a close spelling matches ("hey robo", "hey robots", "herobot" for "hey robot": one edit of eight letters);
- a different word does not ("hey robert": two edits; "hey rob": two);
- a longer word that begins with the phrase does not ("hey robotics": three edits, and the match may not end inside
  a word);
- the phrase anywhere but at the start does not ("I told the robot ...").

A transcript that is only the phrase ("Hey robot.") gives an empty command: the robot was addressed and may answer
("yes?"), which it could not if nothing were published.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.options import Options, option
from hailo_whisper_ros.core.text import normalise


@dataclass(frozen=True)
class WakePhraseOptions(Options):
    PARAMETER_GROUP = "gate"

    wake_phrases: tuple[str, ...] = option(
        [], "Phrases that address the robot: a final transcript beginning with one of them is also published on "
        "`command`, the phrase stripped. Empty: no commands.", kind="str_tuple")
    wake_max_edit_ratio: float = option(
        0.15, "Character edits (Levenshtein, rounded down) allowed per letter of a normalised wake phrase: 0.15 "
        "allows one in 'hey robot' (8 letters) and none in 'and so' (5).", range=(0.0, 0.5))

    def check(self) -> None:
        seen: dict[str, str] = {}
        for phrase in self.wake_phrases:
            if not phrase.strip():
                raise HailoWhisperError("WakePhraseOptions option wake_phrases must not hold an empty phrase")
            words = normalise(phrase)
            if not words:
                raise HailoWhisperError(
                    f"WakePhraseOptions option wake_phrases: {phrase!r} has no words once case and punctuation "
                    "are removed")
            if words in seen:
                raise HailoWhisperError(
                    f"WakePhraseOptions option wake_phrases: {phrase!r} and {seen[words]!r} are the same phrase "
                    f"({words!r}) once case and punctuation are removed")
            seen[words] = phrase


@dataclass(frozen=True)
class WakeMatch:
    phrase: str  # the wake phrase as configured
    command: str  # the rest of the transcript as spoken, leading punctuation and whitespace removed
    edits: int  # character edits between the phrase and the words it matched


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance over characters (insertions, deletions and substitutions cost one each)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def leading_words(text: str, count: int) -> list[tuple[str, int]]:
    """Up to ``count`` leading whitespace-separated pieces of ``text`` that hold words, each as (its normalised
    letters without spaces, the offset in ``text`` where it ends); punctuation-only pieces are skipped."""
    pieces = []
    position = 0
    for piece in text.split():
        position = text.index(piece, position) + len(piece)
        letters = normalise(piece).replace(" ", "")
        if letters:
            pieces.append((letters, position))
            if len(pieces) == count:
                break
    return pieces


def _strip_leading(text: str) -> str:
    """``text`` without the punctuation and whitespace it begins with."""
    start = 0
    while start < len(text) and (text[start].isspace() or unicodedata.category(text[start])[0] == "P"):
        start += 1
    return text[start:]


class WakePhraseMatcher:
    """Matches final transcripts against the wake phrases of a WakePhraseOptions."""

    def __init__(self, options: WakePhraseOptions):
        self.options = options
        # (configured phrase, its normalised letters, its word count, its edit budget)
        self.phrases = []
        for phrase in options.wake_phrases:
            words = normalise(phrase).split()
            letters = "".join(words)
            self.phrases.append((phrase, letters, len(words), int(options.wake_max_edit_ratio * len(letters) + 1e-9)))

    @property
    def enabled(self) -> bool:
        return bool(self.phrases)

    def match(self, text: str) -> WakeMatch | None:
        """The closest wake phrase ``text`` begins with, within its edit budget, or None."""
        if not self.phrases:
            return None
        pieces = leading_words(text, max(words for _, _, words, _ in self.phrases) + 1)
        best: WakeMatch | None = None
        for phrase, letters, words, budget in self.phrases:
            candidate = ""
            for letters_so_far, end in pieces[: words + 1]:
                candidate += letters_so_far
                edits = edit_distance(letters, candidate)
                if edits <= budget and (best is None or edits < best.edits):
                    best = WakeMatch(phrase, _strip_leading(text[end:]), edits)
        return best
