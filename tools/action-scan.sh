#!/usr/bin/env bash
# The GitHub Action's scan step (action.yml): scans every model in SHAPGUARD_MODELS with the CLI, one output
# folder and SARIF file each, writes the worst verdict to $GITHUB_OUTPUT and exits with the worst exit code
# (0 only when every model is clean), so the job is the gate. SHAPGUARD_SIGNING_KEY, when set, is read by
# the CLI itself and makes each scan write a signed attestation.
set -uo pipefail
root="${GITHUB_ACTION_PATH:?}"
out="${SHAPGUARD_OUT:-shapguard-out}"
mkdir -p "$out"
worst_code=0
worst_verdict=clean
rank() { case "$1" in clean) echo 0 ;; incomplete) echo 1 ;; unsupported) echo 2 ;; error) echo 3 ;; *) echo 4 ;; esac; }
found=0
for model in ${SHAPGUARD_MODELS:?}; do
  found=1
  name="$(echo "$model" | sed 's#[^A-Za-z0-9._-]#_#g')"
  args=(scan "$model" --out "$out/$name" --budget "${SHAPGUARD_BUDGET:-60}" --seed "${SHAPGUARD_SEED:-1}" --sarif "$out/$name.sarif")
  if [ -n "${SHAPGUARD_MAX_EVALS:-}" ]; then args+=(--max-evals "$SHAPGUARD_MAX_EVALS"); fi
  node "$root/dist/cli.mjs" "${args[@]}"
  code=$?
  verdict="$(node -e 'try { console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).verdict) } catch { console.log("error") }' "$out/$name/report.json")"
  echo "::notice title=shapguard::$model: $verdict"
  if [ "$(rank "$verdict")" -gt "$(rank "$worst_verdict")" ]; then worst_verdict="$verdict"; fi
  if [ "$code" -gt "$worst_code" ]; then worst_code=$code; fi
done
if [ "$found" = 0 ]; then echo "::error title=shapguard::no models given"; exit 2; fi
echo "verdict=$worst_verdict" >> "${GITHUB_OUTPUT:-/dev/null}"
exit "$worst_code"
