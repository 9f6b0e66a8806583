#!/bin/sh
# Copy the ready pipelines into the kustomize base (kustomize's load
# restrictor forbids reading ../../pipelines) and list them in its
# configMapGenerator. The end-to-end tests fail when the copy is stale.
set -eu
cd "$(dirname "$0")"
rm -rf base/pipelines
mkdir -p base/pipelines
cp ../pipelines/*.toml base/pipelines/
echo "copied $(ls base/pipelines | wc -l) pipelines into deploy/base/pipelines"
