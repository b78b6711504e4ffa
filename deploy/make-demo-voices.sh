#!/usr/bin/env bash
# Makes the demo's speech clips (shipped in live/demo/voices/): three calls, each an agent clip
# and a caller clip on one timeline, so that the legs alternate like a conversation.
# Needs espeak-ng and sox. Output: 8 kHz mono μ-law WAV.
set -euo pipefail
out="$(cd "$(dirname "$0")/.." && pwd)/live/demo/voices"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

# call N: agent voice, caller voice, then alternating lines (agent first)
say() { # voice speed pitch text file
  espeak-ng -v "$1" -s "$2" -p "$3" -w "$work/raw.wav" "$4"
  sox "$work/raw.wav" -r 8000 -c 1 -b 16 "$5" norm -3
}

make_call() {
  local n=$1 agent_voice=$2 caller_voice=$3; shift 3
  local i=0 agent_parts=() caller_parts=()
  for line in "$@"; do
    local speaker=$(( i % 2 ))
    local f="$work/c${n}-${i}.wav"
    if [ $speaker -eq 0 ]; then say "$agent_voice" 165 40 "$line" "$f"; else say "$caller_voice" 150 70 "$line" "$f"; fi
    local len; len=$(soxi -D "$f")
    sox -n -r 8000 -c 1 -b 16 "$work/s${n}-${i}.wav" trim 0 "$len"
    sox -n -r 8000 -c 1 -b 16 "$work/gap.wav" trim 0 0.4
    if [ $speaker -eq 0 ]; then
      agent_parts+=("$f" "$work/gap.wav"); caller_parts+=("$work/s${n}-${i}.wav" "$work/gap.wav")
    else
      caller_parts+=("$f" "$work/gap.wav"); agent_parts+=("$work/s${n}-${i}.wav" "$work/gap.wav")
    fi
    i=$((i + 1))
  done
  sox "${agent_parts[@]}" -e u-law -b 8 "$out/call${n}-agent.wav"
  sox "${caller_parts[@]}" -e u-law -b 8 "$out/call${n}-caller.wav"
}

make_call 1 en-us+m3 en-gb+f3 \
  "Thank you for calling Northwind billing, this is Alex. How can I help you today?" \
  "Hi, I got an invoice this morning and the amount looks much higher than usual." \
  "I'm sorry to hear that. Could you read me the invoice number at the top right?" \
  "Sure, it's four seven one, nine two, eight." \
  "Thank you. I can see a one-off installation fee. Let me check whether that was expected." \
  "Please do, nobody told me about any installation."

make_call 2 de+m2 de+f2 \
  "Guten Tag, Kundenservice Nordwind, mein Name ist Jonas. Was kann ich für Sie tun?" \
  "Hallo, mein Internet fällt seit gestern Abend immer wieder aus." \
  "Das tut mir leid. Leuchtet am Router die Lampe für die Verbindung grün oder rot?" \
  "Sie blinkt rot, ungefähr alle paar Sekunden." \
  "Dann starte ich jetzt einen Leitungstest von hier aus. Das dauert etwa eine Minute." \
  "In Ordnung, ich warte."

make_call 3 en-us+m7 en-us+f4 \
  "Northwind sales, good afternoon, you're speaking with Priya." \
  "Hello, I'd like to upgrade my plan to the faster fibre option." \
  "Great choice. The fibre plan starts next month and includes the router at no charge." \
  "And is there a minimum contract length?" \
  "It's twelve months, and you can cancel any time after that with one month's notice." \
  "Okay, that sounds fine. Let's do it."

ls -l "$out"
