#!/usr/bin/env bash
# Makes the speech clips `live demo` streams: three calls, each an agent leg and a caller leg,
# written to live/demo/voices/callN-{agent,caller}.wav (shipped as package data).
#
#   bash deploy/make-demo-voices.sh
#
# Needs espeak-ng and sox. Both legs of a call are built on one timeline: while one side
# speaks the other side's clip is silent for exactly as long, with a short pause between turns,
# so the two legs alternate like a real conversation and stay aligned when looped together.
# Output is what a telephony fork carries (PROTOCOLS.md, Twilio Media Streams): 8 kHz mono
# 8-bit G.711 μ-law, band-limited to the telephone band, each clip peak-normalised to -3 dBFS.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in espeak-ng sox soxi; do
  command -v "$tool" >/dev/null || { echo "make-demo-voices: $tool is not installed" >&2; exit 1; }
done

OUT=live/demo/voices
export SOX_OPTS=-R  # repeatable dither: the same inputs give byte-identical clips
RATE=8000
GAP=0.45       # seconds of silence on both legs between turns
TAIL=0.8       # seconds of silence on both legs at the end, before the clip loops
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"

# Working format: 8 kHz mono 16-bit signed PCM, so sample counts add up exactly.
PCM=(-r "$RATE" -c 1 -e signed-integer -b 16)

silence() { # silence FILE SAMPLES
  sox "${PCM[@]}" -n "${PCM[@]}" "$1" trim 0 "${2}s"
}

# speak FILE VOICE SPEED PITCH TEXT: one line of speech, trimmed of espeak's lead-in and
# trailing silence, resampled and band-limited (300-3400 Hz, as a phone line carries it).
speak() {
  local file=$1 voice=$2 speed=$3 pitch=$4 text=$5
  espeak-ng -v "$voice" -s "$speed" -p "$pitch" -w "$WORK/raw.wav" "$text"
  sox "$WORK/raw.wav" "${PCM[@]}" "$file" \
    silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse \
    sinc 300-3400 rate -v "$RATE"
}

# make_call NAME AGENT_VOICE AGENT_SPEED AGENT_PITCH CALLER_VOICE CALLER_SPEED CALLER_PITCH
# then lines "A:text" (agent) or "C:text" (caller) on stdin.
make_call() {
  local name=$1 a_voice=$2 a_speed=$3 a_pitch=$4 c_voice=$5 c_speed=$6 c_pitch=$7
  local -a agent_parts=() caller_parts=()
  local gap_samples tail_samples n=0 line who text part quiet samples
  gap_samples=$(awk -v s="$GAP" -v r="$RATE" 'BEGIN { printf "%d", s * r }')
  tail_samples=$(awk -v s="$TAIL" -v r="$RATE" 'BEGIN { printf "%d", s * r }')
  silence "$WORK/$name-gap.wav" "$gap_samples"
  silence "$WORK/$name-tail.wav" "$tail_samples"
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    who=${line%%:*}
    text=${line#*:}
    n=$((n + 1))
    part="$WORK/$name-$n-speech.wav"
    quiet="$WORK/$name-$n-quiet.wav"
    if [ "$who" = A ]; then
      speak "$part" "$a_voice" "$a_speed" "$a_pitch" "$text"
    else
      speak "$part" "$c_voice" "$c_speed" "$c_pitch" "$text"
    fi
    samples=$(soxi -s "$part")
    silence "$quiet" "$samples"
    if [ "$who" = A ]; then
      agent_parts+=("$part" "$WORK/$name-gap.wav")
      caller_parts+=("$quiet" "$WORK/$name-gap.wav")
    else
      agent_parts+=("$quiet" "$WORK/$name-gap.wav")
      caller_parts+=("$part" "$WORK/$name-gap.wav")
    fi
  done
  agent_parts+=("$WORK/$name-tail.wav")
  caller_parts+=("$WORK/$name-tail.wav")
  sox "${agent_parts[@]}" "$WORK/$name-agent.wav"
  sox "${caller_parts[@]}" "$WORK/$name-caller.wav"
  for leg in agent caller; do
    sox "$WORK/$name-$leg.wav" -r "$RATE" -c 1 -e u-law -b 8 "$OUT/$name-$leg.wav" gain -n -3
  done
  echo "$name: $(soxi -D "$OUT/$name-agent.wav") s agent, $(soxi -D "$OUT/$name-caller.wav") s caller"
}

# Call 1, billing (English): US agent, British caller.
make_call call1 en-us+m3 175 45 en-gb+f3 165 65 <<'EOF'
A:Northwind billing, this is Alex. How can I help?
C:Hi, my last invoice looks higher than usual.
A:Let me check. I see a one-off installation fee of forty euros.
C:Oh, I see. That makes sense, thank you.
EOF

# Call 2, support (German): German agent, German caller.
make_call call2 de+m3 170 40 de+f2 160 70 <<'EOF'
A:Guten Tag, technischer Support, Weber am Apparat.
C:Mein Router verliert seit gestern ständig die Verbindung.
A:Blinkt die Lampe für Internet rot?
C:Ja, sie blinkt rot.
A:Gut, ich starte die Leitung von hier aus neu.
EOF

# Call 3, sales (English): British agent, Scottish caller.
make_call call3 en-gb+f4 170 55 en-gb-scotland+m7 160 35 <<'EOF'
A:Good afternoon, Northwind sales, Priya speaking.
C:Hello, I would like to upgrade to the faster plan.
A:Of course. Fibre is twenty nine ninety a month, no setup fee.
C:Great, can it start next month?
A:Yes, I will book it for the first.
EOF

du -ch "$OUT"/call*.wav | tail -n 1
