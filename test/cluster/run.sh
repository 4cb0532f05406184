#!/usr/bin/env bash
# `npm run test:cluster`: starts the throwaway three-node cluster (cluster.sh), runs the `cluster`
# Vitest project on it and tears the cluster down whatever happens (failure, Ctrl-C). Arguments
# go to Vitest, e.g. `npm run test:cluster -- test/cluster/delivery-limit.spec.ts`.
set -euo pipefail
cd "$(dirname "$0")/../.."

teardown() { test/cluster/cluster.sh teardown || true; }
trap teardown EXIT
trap 'exit 130' INT TERM

started=$(date +%s)
test/cluster/cluster.sh start
echo "cluster up in $(($(date +%s) - started)) s"
# The project exists only with TEST_CLUSTER set, so a plain `npm test` never picks it up.
TEST_CLUSTER=1 node node_modules/vitest/vitest.mjs run --project cluster "$@"
