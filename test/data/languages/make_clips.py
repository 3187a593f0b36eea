"""Make the multilingual TTS clips of this folder and their languages.tsv (run from the repository root):

    .venv/bin/python test/data/languages/make_clips.py

Each sentence is spoken by espeak-ng (Debian's espeak-ng 1.51, voice below, 150 words per minute), resampled to
16 kHz mono with the package's own resampler (core.audio.load_audio) and written as 16-bit FLAC. The same four robot
requests in each language, so the languages are compared on the same content. espeak-ng is a formant synthesizer:
far from natural speech, so these clips show that detection works, not how well it does on people.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import soundfile

from hailo_whisper_ros.core.audio import load_audio
from hailo_whisper_ros.core.constants import SAMPLE_RATE

FOLDER = Path(__file__).resolve().parent
WORDS_PER_MINUTE = 150
VOICES = {"en": "en-us", "de": "de", "fr": "fr", "es": "es", "it": "it"}  # language code -> espeak-ng voice
SENTENCES = {
    "en": ["Please bring me a glass of water from the kitchen.",
           "The battery is almost empty, go back to the charging station.",
           "Turn left at the next door and stop in front of the table.",
           "What time does the meeting with the engineers start tomorrow?"],
    "de": ["Bitte bring mir ein Glas Wasser aus der Küche.",
           "Der Akku ist fast leer, fahr zurück zur Ladestation.",
           "Biege an der nächsten Tür links ab und halte vor dem Tisch.",
           "Wann beginnt morgen die Besprechung mit den Ingenieuren?"],
    "fr": ["Apporte-moi un verre d'eau de la cuisine, s'il te plaît.",
           "La batterie est presque vide, retourne à la station de recharge.",
           "Tourne à gauche à la prochaine porte et arrête-toi devant la table.",
           "À quelle heure commence la réunion avec les ingénieurs demain ?"],
    "es": ["Por favor, tráeme un vaso de agua de la cocina.",
           "La batería está casi vacía, vuelve a la estación de carga.",
           "Gira a la izquierda en la próxima puerta y detente delante de la mesa.",
           "¿A qué hora empieza mañana la reunión con los ingenieros?"],
    "it": ["Per favore, portami un bicchiere d'acqua dalla cucina.",
           "La batteria è quasi scarica, torna alla stazione di ricarica.",
           "Gira a sinistra alla prossima porta e fermati davanti al tavolo.",
           "A che ora inizia domani la riunione con gli ingegneri?"],
}


def main() -> None:
    version = subprocess.run(["espeak-ng", "--version"], check=True, capture_output=True, text=True).stdout.strip()
    print(version)
    rows = ["id\tlanguage\ttext"]
    with tempfile.TemporaryDirectory() as scratch:
        for language, sentences in SENTENCES.items():
            for number, text in enumerate(sentences, start=1):
                clip_id = f"{language}_{number:02d}"
                wav = Path(scratch) / f"{clip_id}.wav"
                subprocess.run(["espeak-ng", "-v", VOICES[language], "-s", str(WORDS_PER_MINUTE), "-w", str(wav),
                                text], check=True)
                soundfile.write(FOLDER / f"{clip_id}.flac", load_audio(wav), SAMPLE_RATE, subtype="PCM_16")
                rows.append(f"{clip_id}\t{language}\t{text}")
    (FOLDER / "languages.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(f"wrote {len(rows) - 1} clips and languages.tsv to {FOLDER}")


if __name__ == "__main__":
    main()
