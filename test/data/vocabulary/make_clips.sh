#!/bin/sh
# Makes the vocabulary set's clips from transcripts.tsv (id<TAB>sentence): each sentence spoken by espeak-ng
# (eSpeak NG 1.51, voice en-us, 150 words a minute, its default pitch), then converted by sox (14.4.2) to 16 kHz
# mono 16-bit FLAC. Run it in this folder; the clips it writes are the ones committed.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
while IFS="$(printf '\t')" read -r id sentence; do
    espeak-ng -v en-us -s 150 -w "$tmp/$id.wav" "$sentence"
    sox "$tmp/$id.wav" -r 16000 -c 1 -b 16 "$id.flac"
done < transcripts.tsv
