#!/usr/bin/env bash
# Opens a report.html in headless Chromium (Debian package `chromium`) with networking disabled,
# fails if the page logs a console error or asks for any network resource, checks that the rendered
# DOM has as many <svg> elements as the file, and writes a full-page screenshot.
#
#   scripts/check_report.sh DIR/report.html [SCREENSHOT.png]   (default: DIR/report.png)
#
# Exit 0: rendered cleanly. Exit 1: a problem (printed). Exit 2: usage / no chromium.
set -euo pipefail

html=${1:?usage: scripts/check_report.sh REPORT.html [SCREENSHOT.png]}
[ -f "$html" ] || { echo "no such file: $html" >&2; exit 2; }
html=$(realpath "$html")
shot=${2:-$(dirname "$html")/report.png}
chromium=$(command -v chromium || command -v chromium-browser || true)
[ -n "$chromium" ] || { echo "chromium not found (apt-get install -y chromium)" >&2; exit 2; }

profile=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$profile" "$work"' EXIT

flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
       --disable-background-networking --disable-component-update --disable-sync
       --disable-default-apps --disable-extensions --mute-audio
       --user-data-dir="$profile" --enable-logging=stderr --v=0
       # Any request for an http(s) resource fails (and shows up in the log below).
       --host-resolver-rules="MAP * ~NOTFOUND")

# 1. The DOM after rendering, and the console log of that run.
"$chromium" "${flags[@]}" --virtual-time-budget=5000 --dump-dom "file://$html" >"$work/dom.html" 2>"$work/dom.log" || {
    echo "chromium failed:"; tail -20 "$work/dom.log"; exit 1; }

# 2. A full-page screenshot: page height from the file's SVG heights (plus text), capped.
height=$(python3 - "$html" <<'EOF'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
svg = sum(int(h) for h in re.findall(r'<svg[^>]*?height="(\d+)"', text))
rows = text.count("<tr>")
print(min(16000, 600 + int(svg * 0.95) + 160 * text.count("<figure>") + 26 * rows))
EOF
)
"$chromium" "${flags[@]}" --hide-scrollbars --window-size=1100,"$height" --virtual-time-budget=5000 \
    --screenshot="$shot" "file://$html" >"$work/shot.out" 2>"$work/shot.log" || {
    echo "chromium screenshot failed:"; tail -20 "$work/shot.log"; exit 1; }

status=0
# Chromium logs every console message as ":INFO:CONSOLE" whatever its level (console.error too),
# and a report has no script: any console line is a failure.
if grep -hE ':CONSOLE|Uncaught|net::ERR_' "$work/dom.log" "$work/shot.log"; then
    echo "FAIL: console messages or failed resource loads (above)"; status=1
fi
want=$(grep -o '<svg' "$html" | wc -l)
got=$(grep -o '<svg' "$work/dom.html" | wc -l)
if [ "$want" -eq 0 ] || [ "$got" -ne "$want" ]; then
    echo "FAIL: the file has $want <svg> elements, the rendered DOM $got"; status=1
fi
if grep -qiE 'https?://' "$html"; then
    echo "FAIL: the file names an http(s) address:"; grep -oiE '.{30}https?://.{30}' "$html" | head -5; status=1
fi
if ! grep -q '</html>' "$work/dom.html"; then
    echo "FAIL: no rendered document"; status=1
fi
[ -s "$shot" ] || { echo "FAIL: no screenshot"; status=1; }
if [ $status -eq 0 ]; then
    echo "OK: $html rendered with $got inline SVG plots, no console errors, no network; screenshot $shot (1100x$height)"
fi
exit $status
