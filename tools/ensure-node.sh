#!/usr/bin/env bash
# Sourced by .ci/run: puts a Node.js that satisfies package.json's engines (>= 22) first on PATH,
# installing it from the npm registry (package `node`) into .ci/.tools when the machine's is older.
required_major=22
current_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$current_major" -lt "$required_major" ]; then
	tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.ci/.tools/node"
	if [ ! -x "$tools_dir/node_modules/.bin/node" ]; then
		echo "Node $(node --version 2>/dev/null || echo none) is older than $required_major: installing node@$required_major from the npm registry" >&2
		mkdir -p "$tools_dir"
		# Its own package.json, so npm does not take the repository as the project to install into.
		[ -f "$tools_dir/package.json" ] || echo '{ "private": true }' >"$tools_dir/package.json"
		# The package's install script fetches the platform binary (also from the npm registry).
		(cd "$tools_dir" && npm install --no-save --no-audit --no-fund --ignore-scripts=false --engine-strict=false "node@$required_major" >&2)
	fi
	PATH="$tools_dir/node_modules/.bin:$PATH"
	export PATH
fi
echo "using node $(node --version), npm $(npm --version)" >&2
