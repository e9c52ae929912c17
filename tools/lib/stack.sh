# shellcheck shell=bash
# What tools/destroy-unreachable.sh and tools/replace-control-plane.sh need of a stack, through the
# Pulumi CLI. Sourced; needs `pulumi` and `node` on PATH.

command -v pulumi >/dev/null 2>&1 || {
	echo "The Pulumi CLI is required: https://www.pulumi.com/docs/install/" >&2
	exit 1
}

# stack_args_from ARGS...: sets the array stack_args to the --stack/-s option among ARGS (empty if none),
# so that the tool's own pulumi calls address the same stack as the command it ends with.
stack_args_from() {
	local i j
	stack_args=()
	for ((i = 1; i <= $#; i++)); do
		case "${!i}" in
		--stack | -s)
			j=$((i + 1))
			stack_args=(--stack "${!j}")
			;;
		--stack=*) stack_args=("${!i}") ;;
		esac
	done
}

# api_endpoint: the stack's apiEndpoint output (https://<ip>:6443), empty when it has none.
api_endpoint() {
	pulumi stack output "${stack_args[@]}" apiEndpoint 2>/dev/null || true
}

# accepts_connections URL: true when something accepts a TCP connection at URL's host and port.
accepts_connections() {
	[[ -n $1 ]] && node -e '
const url = new URL(process.argv[1]);
const socket = require("net").connect({ host: url.hostname, port: Number(url.port || 443), timeout: 5000 });
socket.on("connect", () => process.exit(0)).on("timeout", () => process.exit(1)).on("error", () => process.exit(1));' "$1"
}

# state_urns FILTER: the URNs of the stack's resources for which the JavaScript expression FILTER,
# over `r` (a resource of `pulumi stack export`), is true; one per line.
state_urns() {
	pulumi stack export "${stack_args[@]}" | node -e '
const filter = new Function("r", `return (${process.argv[1]});`);
let text = "";
process.stdin.on("data", (d) => (text += d)).on("end", () => {
    for (const r of JSON.parse(text).deployment?.resources ?? []) {
        if (filter(r)) {
            console.log(r.urn);
        }
    }
});' "$1"
}
