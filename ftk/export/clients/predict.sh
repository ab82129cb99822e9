#!/usr/bin/env bash
# Ask TF Serving's REST API with curl. Usage: predict.sh INPUT ...
# INPUT is a text, or an image file when the model takes image bytes (sent as {"b64": ...}).
# The server is $TF_SERVING_URL (default http://localhost:8501).
set -euo pipefail
MODEL="my_model"
INPUT="text"
if [[ "$INPUT" == *_bytes ]]; then
  instances=""
  for f in "$@"; do instances="$instances${instances:+,}{\"b64\": \"$(base64 -w0 "$f")\"}"; done
else
  instances=$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1:])[1:-1])' "$@")
fi
curl -sS --fail "${TF_SERVING_URL:-http://localhost:8501}/v1/models/$MODEL:predict" \
  -H "Content-Type: application/json" -d "{\"instances\": [$instances]}"
