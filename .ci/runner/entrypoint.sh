#!/usr/bin/env bash
# One Container Apps job execution = one ephemeral runner: fetch a registration token with the pool's GitHub token,
# register with the pool's label, take a single job, exit. Environment (set by components/ci_runners.py):
# GITHUB_TOKEN, RUNNER_URL, REGISTRATION_TOKEN_API_URL, RUNNER_LABELS.
set -euo pipefail
: "${GITHUB_TOKEN:?}" "${RUNNER_URL:?}" "${REGISTRATION_TOKEN_API_URL:?}" "${RUNNER_LABELS:?}"

registration_token=$(
  curl -fsSL -X POST \
    -H "Authorization: Bearer ${GITHUB_TOKEN}" \
    -H "Accept: application/vnd.github+json" \
    -H "X-GitHub-Api-Version: 2022-11-28" \
    "${REGISTRATION_TOKEN_API_URL}" | jq -r .token
)
# The job's steps inherit this process's environment: neither the pool's GitHub token nor the managed identity
# endpoint may reach them. A job authenticates as its own GitHub OIDC federation allows (the deploy identity only
# from its approval-gated environment, the read-only identity for previews), whatever runner it lands on.
unset GITHUB_TOKEN IDENTITY_ENDPOINT IDENTITY_HEADER MSI_ENDPOINT MSI_SECRET

cd /home/runner
./config.sh --unattended --ephemeral --disableupdate \
  --url "${RUNNER_URL}" --token "${registration_token}" \
  --labels "${RUNNER_LABELS}" --name "${CONTAINER_APP_REPLICA_NAME:-$(hostname)}"
exec ./run.sh
